-- Move the messages of queue lists named without the key prefix (taskplane before the prefix covered queue
-- lists) into the prefixed lists, oldest ahead and in order, ringing the queue's bell once per message.
-- KEYS: triples (old list, new list, bell list); ARGV[1] most messages per call, ARGV[2] bell cap.
-- Returns the number moved.
local limit = tonumber(ARGV[1])
local moved = 0
for i = 1, #KEYS, 3 do
  while moved < limit do
    -- The newest of the old list goes to the oldest end of the new one, so the old order holds.
    if not redis.call('LMOVE', KEYS[i], KEYS[i + 1], 'LEFT', 'RIGHT') then break end
    redis.call('LPUSH', KEYS[i + 2], 1)
    moved = moved + 1
  end
  redis.call('LTRIM', KEYS[i + 2], 0, tonumber(ARGV[2]) - 1)
end
return moved
