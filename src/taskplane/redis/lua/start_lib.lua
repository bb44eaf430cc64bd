-- The start of a delivery, shared by run_start.lua and fetch.lua (prepended to both by scripts.py, after
-- record_lib.lua).
-- refused(record, cancel marker): the record's fields the start reads, and 1 if the task was cancelled,
-- 2 if it already succeeded (a duplicate delivery: an acknowledgement lost with its worker, a lease that
-- ran out), 0 if it may start. Reads only.
local function refused(record, cancel)
  local seen = redis.call(
    'HMGET', record, 'created_ms', 'state', 'version', 'cancel_requested_ms', 'delivery_attempt', 'deliveries')
  if seen[2] == 'cancelled' or seen[4] or (not seen[1] and redis.call('EXISTS', cancel) == 1) then
    return seen, 1
  end
  if seen[2] == 'succeeded' then return seen, 2 end
  return seen, 0
end

-- start(keys, argv, seen, attempt): count this delivery of ``attempt`` (a string) and write the record as
-- started (keys and argv of record_lib.lua; seen from refused). Returns the deliveries of the attempt so far.
local function start(keys, argv, seen, attempt)
  local deliveries = 1
  if seen[5] == attempt then deliveries = (tonumber(seen[6]) or 0) + 1 end
  argv[#argv + 1] = 'delivery_attempt'
  argv[#argv + 1] = attempt
  argv[#argv + 1] = 'deliveries'
  argv[#argv + 1] = deliveries
  write_record(keys, argv, seen)
  return deliveries
end

-- unstart(keys, argv): undo the start of a delivery that went back to its queue without a crash (a message
-- fetched ahead or prefetched that no process took up, or a running task a stopping worker returned): if
-- the record still says started or progress, it says queued again, written by write_record (keys and argv
-- of record_lib.lua for the state queued: indexed, version bumped, change published), without the worker,
-- start time and progress of the run that ended, and the delivery is not counted. Returns 1 if undone, 0
-- if the record had moved on.
local function unstart(keys, argv)
  local seen = redis.call('HMGET', keys[1], 'created_ms', 'state', 'version', 'deliveries')
  if seen[2] ~= 'started' and seen[2] ~= 'progress' then return 0 end
  redis.call('HDEL', keys[1], 'worker', 'started_ms', 'progress_current', 'progress_total', 'progress_step',
    'progress_message', 'progress_meta', 'progress_updated_ms')
  argv[#argv + 1] = 'deliveries'
  argv[#argv + 1] = math.max((tonumber(seen[4]) or 1) - 1, 0)
  write_record(keys, argv, seen)
  return 1
end
