-- Release a uniqueness lock only if this task still owns it. KEYS[1] lock; ARGV[1] task id.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
