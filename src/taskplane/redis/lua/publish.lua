-- Publish in one atomic step: the writes queued by the publish hooks (record writes and plain commands),
-- then the message's own commands. Replaces a MULTI/EXEC holding an EVAL with this script's source.
-- KEYS: the keys of every operation, in order. ARGV[1] the number of operations, then per operation:
--   'r', the argument count, record_write.lua's arguments followed by its key count (keys from KEYS), or
--   'm', the argument count, then: a record_write.lua argument template's length and the template, the
--   count of values that differ per record and their positions in the template (the id's first), the
--   record count, the count of keys shared by every record; then the values of each record in turn. KEYS:
--   the shared keys (record_write.lua's keys without the record hash and events channel), then per
--   record its hash and its events channel. Many new records of one task in one operation, or
--   'c', the argument count, the command name and its arguments (its one key comes from KEYS), or
--   'd', the argument count, the delay in seconds and messages: into a delayed set (its key from KEYS),
--   due by the server's clock (so hosts with skewed clocks agree), or
--   'b', 1, the cap: ring a bell list (its key from KEYS), trimmed only once it is longer than the cap.
--   'k', 2, a value and a time to live in ms: a claim (an idempotency key, a uniqueness lock; its key from
--   KEYS), SET unless the key exists. Claims come before every other operation: when one finds its key
--   taken, the claims made so far are undone and nothing else runs.
-- Returns the number of operations run, or {claim number, the value that held it} when a claim failed.
local count = tonumber(ARGV[1])
local key, at = 1, 2
local claimed = {}
for _ = 1, count do
  local kind, nargs = ARGV[at], tonumber(ARGV[at + 1])
  local args = {unpack(ARGV, at + 2, at + 1 + nargs)}
  at = at + 2 + nargs
  if kind == 'k' then
    -- Time stands still inside a script: a key SET NX refuses is there for the GET.
    if not redis.call('SET', KEYS[key], args[1], 'NX', 'PX', args[2]) then
      local value = redis.call('GET', KEYS[key])
      for _, taken in ipairs(claimed) do redis.call('DEL', taken) end
      return {#claimed + 1, value}
    end
    claimed[#claimed + 1] = KEYS[key]
    key = key + 1
  elseif kind == 'r' then
    local nkeys = tonumber(args[#args])  -- the last argument: how many keys it takes
    args[#args] = nil
    local keys = {unpack(KEYS, key, key + nkeys - 1)}
    key = key + nkeys
    write_record(keys, args, redis.call('HMGET', keys[1], 'created_ms', 'state', 'version'))
  elseif kind == 'm' then
    local size = tonumber(args[1])
    local template = {unpack(args, 2, 1 + size)}
    local at2 = 2 + size
    local nvalues = tonumber(args[at2])
    local positions = {}
    for j = 1, nvalues do positions[j] = tonumber(args[at2 + j]) end
    at2 = at2 + nvalues + 1
    local records, nshared = tonumber(args[at2]), tonumber(args[at2 + 1])
    local shared = {unpack(KEYS, key, key + nshared - 1)}
    key = key + nshared
    at2 = at2 + 2
    for _ = 1, records do
      local keys = {KEYS[key], shared[1], shared[2], KEYS[key + 1], unpack(shared, 3)}
      key = key + 2
      for j = 1, nvalues do template[positions[j]] = args[at2 + j - 1] end
      at2 = at2 + nvalues
      write_record(keys, template, redis.call('HMGET', keys[1], 'created_ms', 'state', 'version'))
    end
  elseif kind == 'b' then
    if redis.call('LPUSH', KEYS[key], 1) > tonumber(args[1]) then redis.call('LTRIM', KEYS[key], 0, args[1] - 1) end
    key = key + 1
  elseif kind == 'd' then
    local t = redis.call('TIME')
    local due = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(args[1])
    local members = {}
    for j = 2, #args do
      members[#members + 1] = due
      members[#members + 1] = args[j]
    end
    redis.call('ZADD', KEYS[key], unpack(members))
    key = key + 1
  else
    local name = table.remove(args, 1)
    redis.call(name, KEYS[key], unpack(args))
    key = key + 1
  end
end
return count
