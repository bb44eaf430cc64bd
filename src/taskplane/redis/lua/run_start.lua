-- A delivery is about to run: in one step, stop if the task was cancelled, reserve its rate-limit slot
-- when it has a limit (gcra_lib.lua), count the delivery of this attempt, and write the record as started
-- (start_lib.lua, record_lib.lua).
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
local seen, refusal = refused(keys[1], KEYS[1])
if refusal > 0 then return {refusal, 0} end
if limited then
  local wait = reserve_slot(KEYS[2], ARGV[3], ARGV[4])
  if wait > 0 then return {3, wait} end
end
return {0, start(keys, argv, seen, ARGV[1])}
