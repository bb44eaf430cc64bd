-- Acknowledge what the worker finished, then take the next messages and put them in flight under a lease
-- in the same step (nothing is ever between).
-- KEYS[1] unacked hash (tag -> [message, exchange, routing key]), KEYS[2] lease index zset (tag -> time),
-- KEYS[3] quarantine hash, then n queue lists in the order to take from, then the bell lists of their queues.
-- ARGV[1] now (the worker's clock, as kombu's lease checks use), ARGV[2] n, ARGV[3] most messages to take,
-- ARGV[4..] tags of finished deliveries to acknowledge first (their unacked entry and lease go).
-- One LMPOP takes up to ARGV[3] messages from the first non-empty list, so tier and priority order hold.
-- Bells are not popped per message: they are cleared when every list is empty.
-- Returns {} when every list is empty; else {list, item, tag, item, tag, ...}. A tag of false marks an
-- item that is not a kombu message: it waits in the quarantine hash (field: sha1 of the item) until it is
-- dead-lettered.
if #ARGV > 3 then
  redis.call('HDEL', KEYS[1], unpack(ARGV, 4))
  redis.call('ZREM', KEYS[2], unpack(ARGV, 4))
end
local n = tonumber(ARGV[2])
local pop = {n}
for i = 1, n do pop[i + 1] = KEYS[3 + i] end
pop[n + 2], pop[n + 3], pop[n + 4] = 'RIGHT', 'COUNT', tonumber(ARGV[3])
local taken = redis.call('LMPOP', unpack(pop))
if not taken then
  -- Whatever bells are still rung were for messages already taken: silence them, so that the wait that
  -- follows blocks until the next publish.
  redis.call('DEL', unpack(KEYS, 4 + n, #KEYS))
  return {}
end
local list = taken[1]
local reply = {list}
local entries, leases = {}, {}
for _, item in ipairs(taken[2]) do
  local ok, message = pcall(cjson.decode, item)
  local properties = ok and type(message) == 'table' and message['properties']
  local info = type(properties) == 'table' and properties['delivery_info']
  local tag = type(properties) == 'table' and properties['delivery_tag']
  if type(message) == 'table' and type(message['body']) == 'string' and type(info) == 'table'
      and (type(tag) == 'string' or type(tag) == 'number')
      and (message['headers'] == nil or type(message['headers']) == 'table') then
    tag = tostring(tag)
    local exchange = info['exchange'] or ''
    local routing_key = info['routing_key'] or ''
    -- The item is kept as it came (re-encoding it would turn [null, null] into {}).
    entries[#entries + 1] = tag
    entries[#entries + 1] = '[' .. item .. ',' .. cjson.encode(exchange) .. ',' .. cjson.encode(routing_key) .. ']'
    leases[#leases + 1] = ARGV[1]
    leases[#leases + 1] = tag
  else
    redis.call('HSET', KEYS[3], redis.sha1hex(item), cjson.encode({list, item}))
    tag = false
  end
  reply[#reply + 1] = item
  reply[#reply + 1] = tag
end
if #entries > 0 then
  redis.call('HSET', KEYS[1], unpack(entries))
  redis.call('ZADD', KEYS[2], unpack(leases))
end
return reply
