-- Publish in one atomic step: the writes queued by the publish hooks (record writes and plain commands),
-- then the message's own commands. Replaces a MULTI/EXEC holding an EVAL with this script's source.
-- KEYS: the keys of every operation, in order. ARGV[1] the number of operations, then per operation:
--   'r', the argument count, record_write.lua's arguments followed by its key count (keys from KEYS), or
--   'c', the argument count, the command name and its arguments (its one key comes from KEYS), or
--   'd', 2, the delay in seconds and a message: into a delayed set (its key from KEYS), due by the
--   server's clock (so hosts with skewed clocks agree), or
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
  elseif kind == 'b' then
    if redis.call('LPUSH', KEYS[key], 1) > tonumber(args[1]) then redis.call('LTRIM', KEYS[key], 0, args[1] - 1) end
    key = key + 1
  elseif kind == 'd' then
    local t = redis.call('TIME')
    redis.call('ZADD', KEYS[key], tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(args[1]), args[2])
    key = key + 1
  else
    local name = table.remove(args, 1)
    redis.call(name, KEYS[key], unpack(args))
    key = key + 1
  end
end
return count
