-- Take back one delivery from the count kept in a task record, only if the record exists (never creates
-- a partial one) and its task has not finished (a finished task whose acknowledgement had not gone out
-- yet keeps the count it finished with). KEYS[1] record hash; ARGV the final states.
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return 0 end
for _, final in ipairs(ARGV) do
  if state == final then return 0 end
end
return redis.call('HINCRBY', KEYS[1], 'deliveries', -1)
