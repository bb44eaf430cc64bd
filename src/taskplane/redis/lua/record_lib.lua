-- The record write shared by record_write.lua and run_start.lua (prepended to both by scripts.py).
-- keys: [1] record hash, [2] name index, [3] queue index, [4] events channel, [5..] one index per indexed
-- state, in the order of taskplane.records.INDEXED_STATES (each ends with ':' .. state). There is no index
-- of all records: a list of all of them merges the state indexes (taskplane.stores.record_search).
-- argv: [1] new state's index position in keys (0: state unchanged; -1: a state without an index, such
-- as started: the record only leaves its old state's index), [2] now ms, [3] ttl s,
-- [4] 1 to refresh the ttl, 2 to refresh it unless the record is young, 0 to keep it (creation always
-- sets it), [5] the task id (the key names it: it is not a field), [6..] field, value pairs.
-- current: {created_ms, state, version} as read by HMGET.
-- A move the record's state machine does not allow (TRANSITIONS, taskplane.core.transitions, put in front
-- of this library by scripts.py) is refused whole: nothing is written and false is returned.
-- Costs one HSET, plus ZADD x2 (name, queue) and EXPIRE for a new record, ZREM + ZADD for a change of
-- state (ZADD alone for a new record), EXPIRE
-- when asked, and a PUBLISH of the change unless the record is new (nobody can wait on it yet).
local function write_record(keys, argv, current)
  local created, old = current[1], current[2]
  local id = argv[5]
  local fields = {unpack(argv, 6)}
  if old then
    for i = 1, #fields - 1, 2 do
      if fields[i] == 'state' and TRANSITIONS[old] and not TRANSITIONS[old][fields[i + 1]] then return false end
    end
  end
  local version = (tonumber(current[3]) or 0) + 1
  fields[#fields + 1] = 'version'
  fields[#fields + 1] = version
  local fresh = not created
  if fresh then
    created = argv[2]
    fields[#fields + 1] = 'created_ms'
    fields[#fields + 1] = created
  end
  redis.call('HSET', keys[1], unpack(fields))
  if fresh then
    redis.call('ZADD', keys[2], created, id)
    redis.call('ZADD', keys[3], created, id)
  end
  local position = tonumber(argv[1])
  if position ~= 0 then
    local target = position > 0 and keys[position] or nil
    local moved = not old or not target or string.sub(target, -(#old + 1)) ~= ':' .. old
    if moved and old then  -- out of the old state's index (a running state has none)
      for i = 5, #keys do
        if string.sub(keys[i], -(#old + 1)) == ':' .. old then redis.call('ZREM', keys[i], id) end
      end
    end
    if moved and target then redis.call('ZADD', target, created, id) end
  end
  -- '2' (a final state): a record younger than 1 % of its retention keeps the TTL it was given at creation
  -- (it is kept at least 99 % of the retention after finishing); an older one gets the full retention again.
  local refresh = argv[4] == '1' or (argv[4] == '2' and tonumber(argv[2]) - tonumber(created) > tonumber(argv[3]) * 10)
  if fresh or refresh then redis.call('EXPIRE', keys[1], tonumber(argv[3])) end
  if not fresh then
    local change = {version = version}
    for i = 1, #fields - 2, 2 do change[fields[i]] = fields[i + 1] end
    redis.call('PUBLISH', keys[4], cjson.encode(change))
  end
  return created
end
