-- Move one dead letter back to work in one step: it leaves the dead-letter queue exactly when its
-- message enters a queue list (ARGV[3] = 'list', ringing the queue's bell) or a delayed set ('delayed',
-- due in ARGV[4] s).
-- KEYS[1] index zset, KEYS[2] envelopes hash, KEYS[3] target, KEYS[4] the target queue's bell list,
-- KEYS[5] the dead-letter queue's bytes counter; ARGV[1] id, ARGV[2] payload, ARGV[5] bell cap.
-- Returns 1 on success, 0 when the id is no longer in the dead-letter queue.
local size = redis.call('HSTRLEN', KEYS[2], ARGV[1])
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then
  return 0
end
redis.call('DECRBY', KEYS[5], size)
redis.call('ZREM', KEYS[1], ARGV[1])
if ARGV[3] == 'delayed' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), ARGV[2])
else
  redis.call('LPUSH', KEYS[3], ARGV[2])
  redis.call('LPUSH', KEYS[4], 1)
  redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[5]) - 1)
end
return 1
