-- Add (or replace) a dead-letter envelope and enforce the queue's cap, oldest dropped first.
-- KEYS[1] index zset, KEYS[2] envelopes hash, KEYS[3] dropped counter, KEYS[4] set of queues with letters.
-- ARGV[1] id, ARGV[2] envelope JSON, ARGV[3] score (ms), ARGV[4] cap, ARGV[5] queue name.
-- Returns how many were dropped.
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[4], ARGV[5])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[4])
if excess > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[1], excess)
  for i = 1, #oldest, 2 do
    redis.call('HDEL', KEYS[2], oldest[i])
  end
  redis.call('INCRBY', KEYS[3], excess)
  return excess
end
return 0
