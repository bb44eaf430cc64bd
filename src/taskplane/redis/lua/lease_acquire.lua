-- Take or renew the scheduler leader's lease (a fenced lease: each new term gets the next epoch).
-- KEYS[1] lease, KEYS[2] epoch counter; ARGV[1] owner, ARGV[2] TTL ms, ARGV[3] the token held ('' if none).
-- Returns the token "<epoch>:<owner>" when the caller leads, false otherwise.
local current = redis.call('GET', KEYS[1])
if current then
  if ARGV[3] ~= '' and current == ARGV[3] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return current
  end
  return false
end
local epoch = redis.call('INCR', KEYS[2])
local token = epoch .. ':' .. ARGV[1]
redis.call('SET', KEYS[1], token, 'PX', ARGV[2])
return token
