-- Take the next message and put it in flight under a lease in the same step (nothing is ever between).
-- KEYS[1] unacked hash (tag -> [message, exchange, routing key]), KEYS[2] lease index zset (tag -> time),
-- KEYS[3] quarantine hash, then n queue lists in the order to take from, then their n bell lists.
-- ARGV[1] now (the worker's clock, as kombu's lease checks use), ARGV[2] n.
-- Returns nil when every list is empty; else {list, item, tag}. A tag of false marks an item that is not
-- a kombu message: it waits in the quarantine hash (field: sha1 of the item) until it is dead-lettered.
local n = tonumber(ARGV[2])
for i = 1, n do
  local list = KEYS[3 + i]
  local item = redis.call('RPOP', list)
  if item then
    redis.call('RPOP', KEYS[3 + n + i])  -- one bell rung for this message is no longer needed
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
      local entry = '[' .. item .. ',' .. cjson.encode(exchange) .. ',' .. cjson.encode(routing_key) .. ']'
      redis.call('HSET', KEYS[1], tag, entry)
      redis.call('ZADD', KEYS[2], ARGV[1], tag)
      return {list, item, tag}
    end
    redis.call('HSET', KEYS[3], redis.sha1hex(item), cjson.encode({list, item}))
    return {list, item, false}
  end
end
return nil
