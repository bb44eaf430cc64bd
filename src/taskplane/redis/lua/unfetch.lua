-- Put a message the worker fetched ahead (held, never handed to Celery) back at the head of the list it
-- came from, if it is still this worker's (a lease that ran out may have returned it already), ring its
-- queue's bell, and, if the fetch started its task, undo that: the record says queued again and the
-- delivery is not counted.
-- KEYS[1] unacked hash, KEYS[2] lease index, KEYS[3] the list, KEYS[4] the queue's bell, then, if the
-- fetch started it: KEYS[5] the record, KEYS[6] the index of queued records.
-- ARGV[1] the delivery tag, ARGV[2] the item as fetched, ARGV[3] the bell's cap, ARGV[4] the task id.
-- Returns 1 if it was put back, 0 if it was no longer in flight.
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[2])
redis.call('LPUSH', KEYS[4], 1)
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[3]) - 1)
if KEYS[5] then
  local seen = redis.call('HMGET', KEYS[5], 'state', 'created_ms')
  if seen[1] == 'started' then
    redis.call('HSET', KEYS[5], 'state', 'queued')
    redis.call('HINCRBY', KEYS[5], 'deliveries', -1)
    redis.call('ZADD', KEYS[6], seen[2], ARGV[4])
  end
end
return 1
