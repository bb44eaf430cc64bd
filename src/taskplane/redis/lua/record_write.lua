-- Write fields of a task record, keep its indexes in step and publish the change.
-- KEYS[1] record hash, KEYS[2] index of all, KEYS[3] name index, KEYS[4] queue index, KEYS[5] events channel,
-- KEYS[6..] one index per state, in the order of taskplane.records.STATES.
-- ARGV[1] new state position in KEYS (0: state unchanged), ARGV[2] now ms, ARGV[3] ttl s,
-- ARGV[4..] field, value pairs.
local created = redis.call('HGET', KEYS[1], 'created_ms')
local change = {}
if not created then
  created = ARGV[2]
  redis.call('HSET', KEYS[1], 'created_ms', created)
  redis.call('ZADD', KEYS[2], created, ARGV[5])
  redis.call('ZADD', KEYS[3], created, ARGV[5])
  redis.call('ZADD', KEYS[4], created, ARGV[5])
  change['created_ms'] = created
end
local position = tonumber(ARGV[1])
if position > 0 then
  local id = ARGV[5]
  for i = 6, #KEYS do
    if i ~= position then redis.call('ZREM', KEYS[i], id) end
  end
  redis.call('ZADD', KEYS[position], created, id)
end
if #ARGV > 4 then
  redis.call('HSET', KEYS[1], unpack(ARGV, 4))
  for i = 4, #ARGV, 2 do change[ARGV[i]] = ARGV[i + 1] end
end
-- Every write bumps the version, so a reader can tell an old change from a new one without clocks.
change['version'] = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3]))
redis.call('PUBLISH', KEYS[5], cjson.encode(change))
return created
