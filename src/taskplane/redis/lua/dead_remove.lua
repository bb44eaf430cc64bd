-- Delete one dead letter and take its bytes off the queue's count.
-- KEYS[1] index zset, KEYS[2] envelopes hash, KEYS[3] bytes counter; ARGV[1] id.
-- Returns 1 when it was there, else 0.
local size = redis.call('HSTRLEN', KEYS[2], ARGV[1])
if redis.call('HDEL', KEYS[2], ARGV[1]) == 0 then
  return 0
end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('DECRBY', KEYS[3], size)
return 1
