-- Store a message in a queue's delayed set, due `delay` seconds from now by the server's clock
-- (so hosts with skewed clocks agree). KEYS[1] delayed zset; ARGV[1] delay seconds, ARGV[2] payload.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
return 1
