-- Cluster-wide rate limit (GCRA) that reserves a slot: every caller is given the next free slot.
-- KEYS[1] limit state (theoretical arrival time); ARGV[1] emission interval s, ARGV[2] burst.
-- Returns the wait in milliseconds before the caller's slot (0: run now).
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local tolerance = (tonumber(ARGV[2]) - 1) * interval
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local slot = tat - tolerance
if slot < now then slot = now end
local new_tat = tat + interval
redis.call('SET', KEYS[1], string.format('%.6f', new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return math.floor((slot - now) * 1000 + 0.5)
