-- A delivery is about to run: in one step, stop if the task was cancelled, reserve its rate-limit slot
-- when it has a limit (gcra_lib.lua), count the delivery of this attempt, and write the record as started
-- (record_lib.lua).
-- KEYS[1] cancel marker, then the limit's state when ARGV[2] is 1, then the record keys of record_lib.lua.
-- ARGV[1] the attempt, ARGV[2] 1 to reserve a slot (then ARGV[3] emission interval s, ARGV[4] burst) or 0,
-- then the record arguments of record_lib.lua.
-- Returns {1, 0} when cancelled, {2, 0} when the task already succeeded (a duplicate delivery: an
-- acknowledgement lost with its worker, a lease that ran out), {3, wait in ms} when its slot lies ahead
-- (it must wait; the slot is its own); nothing else is written then. Else
-- {0, deliveries of this attempt so far}.
local limited = ARGV[2] == '1'
local keys = {unpack(KEYS, limited and 3 or 2)}
local argv = {unpack(ARGV, limited and 5 or 3)}
local seen = redis.call(
  'HMGET', keys[1], 'created_ms', 'state', 'version', 'cancel_requested_ms', 'delivery_attempt', 'deliveries')
if seen[2] == 'cancelled' or seen[4] or (not seen[1] and redis.call('EXISTS', KEYS[1]) == 1) then
  return {1, 0}
end
if seen[2] == 'succeeded' then return {2, 0} end
if limited then
  local wait = reserve_slot(KEYS[2], ARGV[3], ARGV[4])
  if wait > 0 then return {3, wait} end
end
local deliveries = 1
if seen[5] == ARGV[1] then deliveries = (tonumber(seen[6]) or 0) + 1 end
argv[#argv + 1] = 'delivery_attempt'
argv[#argv + 1] = ARGV[1]
argv[#argv + 1] = 'deliveries'
argv[#argv + 1] = deliveries
write_record(keys, argv, seen)
return {0, deliveries}
