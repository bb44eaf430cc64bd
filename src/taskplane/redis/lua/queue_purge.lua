-- Take up to ARGV[1] messages out of one queue (its lists, then its delayed set) into its purge list, where
-- the purge reads them to mark their records cancelled before deleting them: a purge cut short leaves
-- them there for the next one, never messages gone with their records still "queued".
-- KEYS[1] purge list, KEYS[2] delayed set, KEYS[3..] the queue's lists. Returns the number taken.
local limit = tonumber(ARGV[1])
local taken = 0
for i = 3, #KEYS do
  while taken < limit do
    if not redis.call('LMOVE', KEYS[i], KEYS[1], 'RIGHT', 'LEFT') then break end
    taken = taken + 1
  end
end
if taken < limit then
  local due = redis.call('ZRANGE', KEYS[2], 0, limit - taken - 1)
  if #due > 0 then
    redis.call('LPUSH', KEYS[1], unpack(due))
    redis.call('ZREM', KEYS[2], unpack(due))
    taken = taken + #due
  end
end
return taken
