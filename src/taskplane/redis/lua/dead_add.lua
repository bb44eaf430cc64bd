-- Add (or replace) a dead-letter envelope and enforce the queue's caps, oldest dropped first: at most ARGV[4]
-- letters and ARGV[5] bytes of envelopes (the letter just added is always kept).
-- KEYS[1] index zset, KEYS[2] envelopes hash, KEYS[3] dropped counter, KEYS[4] bytes counter (one queue's:
-- one slot; the caller names the queue in the set of queues with letters).
-- ARGV[1] id, ARGV[2] envelope JSON, ARGV[3] score (ms), ARGV[4] letter cap, ARGV[5] byte cap.
-- Returns how many were dropped.
local before = redis.call('HSTRLEN', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
local size = redis.call('INCRBY', KEYS[4], string.len(ARGV[2]) - before)
local count = redis.call('ZCARD', KEYS[1])
local letters, bytes = tonumber(ARGV[4]), tonumber(ARGV[5])
local dropped = 0
while count > 1 and (count > letters or size > bytes) do
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
  if oldest == ARGV[1] then
    -- the new letter is the oldest (an earlier stamp): keep it, drop the next
    oldest = redis.call('ZRANGE', KEYS[1], 1, 1)[1]
  end
  size = redis.call('DECRBY', KEYS[4], redis.call('HSTRLEN', KEYS[2], oldest))
  redis.call('HDEL', KEYS[2], oldest)
  redis.call('ZREM', KEYS[1], oldest)
  count = count - 1
  dropped = dropped + 1
end
if dropped > 0 then
  redis.call('INCRBY', KEYS[3], dropped)
end
return dropped
