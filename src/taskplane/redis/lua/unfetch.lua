-- Put a message the worker fetched ahead (held, never handed to Celery) back at the head of the list it
-- came from, if it is still this worker's (a lease that ran out may have returned it already), ring its
-- queue's bell, and, if the fetch started its task, undo that (start_lib.lua's unstart).
-- KEYS[1] unacked hash, KEYS[2] lease index, KEYS[3] the list, KEYS[4] the queue's bell, then, if the
-- fetch started it, the record keys of record_lib.lua.
-- ARGV[1] the delivery tag, ARGV[2] the item as fetched, ARGV[3] the bell's cap, then, if the fetch
-- started it, the record arguments of record_lib.lua for the state queued.
-- Returns 1 if it was put back, 0 if it was no longer in flight.
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('RPUSH', KEYS[3], ARGV[2])
redis.call('LPUSH', KEYS[4], 1)
redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[3]) - 1)
if #KEYS > 4 then unstart({unpack(KEYS, 5)}, {unpack(ARGV, 4)}) end
return 1
