-- Move due messages from delayed sets to the front of their queue lists, atomically, ringing the queue's
-- bell once per message (idle consumers wake at once). A message with a priority above 0 goes to its
-- priority's list (the queue's name, ARGV[3], the priority), as kombu names them.
-- KEYS: triples (delayed zset, queue list, bell list); ARGV[1] most messages per triple, ARGV[2] bell cap,
-- ARGV[3] kombu's priority separator.
-- Returns the number moved.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[1])
local cap = tonumber(ARGV[2])
local moved = 0
for i = 1, #KEYS, 3 do
  local due = redis.call('ZRANGEBYSCORE', KEYS[i], '-inf', now, 'LIMIT', 0, limit)
  if #due > 0 then
    -- RPUSH in reverse due order: the earliest-due ends up next to be popped.
    for j = #due, 1, -1 do
      local target = KEYS[i + 1]
      local ok, message = pcall(cjson.decode, due[j])
      local properties = ok and type(message) == 'table' and message['properties']
      local priority = type(properties) == 'table' and tonumber(properties['priority']) or 0
      priority = math.max(0, math.min(9, math.floor(priority)))
      if priority > 0 then target = target .. ARGV[3] .. priority end
      redis.call('RPUSH', target, due[j])
      redis.call('LPUSH', KEYS[i + 2], 1)
    end
    redis.call('LTRIM', KEYS[i + 2], 0, cap - 1)
    redis.call('ZREM', KEYS[i], unpack(due))
    moved = moved + #due
  end
end
return moved
