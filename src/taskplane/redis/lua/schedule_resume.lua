-- Resume a paused schedule from its next slot: slots that passed while paused are not fired.
-- KEYS[1] schedule hash; ARGV[1] the latest slot now (ms). The last slot only ever moves forward.
redis.call('HDEL', KEYS[1], 'paused')
local last = tonumber(redis.call('HGET', KEYS[1], 'last_slot_ms') or '-1')
if tonumber(ARGV[1]) > last then
  redis.call('HSET', KEYS[1], 'last_slot_ms', ARGV[1])
end
return 1
