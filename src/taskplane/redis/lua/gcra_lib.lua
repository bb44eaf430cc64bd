-- Cluster-wide rate limit (GCRA) that reserves a slot: every caller is given the next free slot.
-- Used by run_start.lua (prepended to it by scripts.py).
-- key: the limit's state (theoretical arrival time); interval: emission interval in s; burst.
-- Returns the wait in milliseconds before the caller's slot (0: run now).
local function reserve_slot(key, interval, burst)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
  interval = tonumber(interval)
  local tolerance = (tonumber(burst) - 1) * interval
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local slot = tat - tolerance
  if slot < now then slot = now end
  local new_tat = tat + interval
  redis.call('SET', key, string.format('%.6f', new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
  return math.floor((slot - now) * 1000 + 0.5)
end
