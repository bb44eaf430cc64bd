-- Write fields of a task record, keep its indexes in step and publish the change.
-- KEYS[1] record hash, KEYS[2] index of all, KEYS[3] name index, KEYS[4] queue index, KEYS[5] events channel,
-- KEYS[6..] one index per state, in the order of taskplane.records.STATES (each ends with ':' .. state).
-- ARGV[1] new state position in KEYS (0: state unchanged), ARGV[2] now ms, ARGV[3] ttl s,
-- ARGV[4] 1 to refresh the ttl (creation always does), ARGV[5..] field, value pairs; ARGV[6] is the id.
-- Costs 2 commands plus one per index moved: HMGET, HSET, then ZADD x4 and EXPIRE for a new record;
-- ZREM + ZADD for a state change; EXPIRE when asked; PUBLISH unless the record is new.
-- Returns {created_ms, previous state or false}.
local current = redis.call('HMGET', KEYS[1], 'created_ms', 'state', 'version')
local created, old = current[1], current[2]
local id = ARGV[6]
local fields = {unpack(ARGV, 5)}
local version = (tonumber(current[3]) or 0) + 1
fields[#fields + 1] = 'version'
fields[#fields + 1] = version
local fresh = not created
if fresh then
  created = ARGV[2]
  fields[#fields + 1] = 'created_ms'
  fields[#fields + 1] = created
end
redis.call('HSET', KEYS[1], unpack(fields))
if fresh then
  redis.call('ZADD', KEYS[2], created, id)
  redis.call('ZADD', KEYS[3], created, id)
  redis.call('ZADD', KEYS[4], created, id)
end
local position = tonumber(ARGV[1])
if position > 0 then
  local target = KEYS[position]
  if old and string.sub(target, -(#old + 1)) ~= ':' .. old then
    for i = 6, #KEYS do
      if string.sub(KEYS[i], -(#old + 1)) == ':' .. old then redis.call('ZREM', KEYS[i], id) end
    end
  end
  if not old or string.sub(target, -(#old + 1)) ~= ':' .. old then redis.call('ZADD', target, created, id) end
end
if fresh or ARGV[4] == '1' then redis.call('EXPIRE', KEYS[1], tonumber(ARGV[3])) end
if not fresh then
  local change = {version = version}
  for i = 1, #fields - 2, 2 do change[fields[i]] = fields[i + 1] end
  redis.call('PUBLISH', KEYS[5], cjson.encode(change))
end
return {created, old or false}
