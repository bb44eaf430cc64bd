-- Move one queue's due messages from its delayed set to the front of its lists, atomically, ringing the
-- queue's bell once per message (idle consumers wake at once). A message goes to its priority's list.
-- KEYS[1] the delayed zset, KEYS[2] the bell list, KEYS[3..12] the queue's lists, priority 0 to 9 (all
-- under the queue's tag: one slot); ARGV[1] most messages to move, ARGV[2] bell cap.
-- Returns the number moved.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
if #due == 0 then return 0 end
-- RPUSH in reverse due order: the earliest-due ends up next to be popped.
for j = #due, 1, -1 do
  local ok, message = pcall(cjson.decode, due[j])
  local properties = ok and type(message) == 'table' and message['properties']
  local priority = type(properties) == 'table' and tonumber(properties['priority']) or 0
  priority = math.max(0, math.min(9, math.floor(priority)))
  redis.call('RPUSH', KEYS[3 + priority], due[j])
  redis.call('LPUSH', KEYS[2], 1)
end
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[2]) - 1)
redis.call('ZREM', KEYS[1], unpack(due))
return #due
