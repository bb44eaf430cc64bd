-- A delivery is about to run: in one step, stop if the task was cancelled, count the delivery of this
-- attempt, and write the record as started (record_lib.lua).
-- KEYS[1] cancel marker, KEYS[2..] the record keys of record_lib.lua.
-- ARGV[1] the attempt, ARGV[2..] the record arguments of record_lib.lua.
-- Returns {1, 0} when cancelled, {2, 0} when the task already succeeded (a duplicate delivery: an
-- acknowledgement lost with its worker, a lease that ran out); nothing is written then. Else
-- {0, deliveries of this attempt so far}.
local keys = {unpack(KEYS, 2)}
local argv = {unpack(ARGV, 2)}
local seen = redis.call(
  'HMGET', keys[1], 'created_ms', 'state', 'version', 'cancel_requested_ms', 'delivery_attempt', 'deliveries')
if seen[2] == 'cancelled' or seen[4] or (not seen[1] and redis.call('EXISTS', KEYS[1]) == 1) then
  return {1, 0}
end
if seen[2] == 'succeeded' then return {2, 0} end
local deliveries = 1
if seen[5] == ARGV[1] then deliveries = (tonumber(seen[6]) or 0) + 1 end
argv[#argv + 1] = 'delivery_attempt'
argv[#argv + 1] = ARGV[1]
argv[#argv + 1] = 'deliveries'
argv[#argv + 1] = deliveries
write_record(keys, argv, seen)
return {0, deliveries}
