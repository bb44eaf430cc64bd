-- Take back one delivery from the count kept in a task record, only if the record exists (never creates
-- a partial one). KEYS[1] record hash.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], 'deliveries', -1)
