-- Claim one slot of a schedule, at most once, and only while holding the leader's lease (fenced).
-- KEYS[1] lease, KEYS[2] schedule hash, KEYS[3] firing log.
-- ARGV[1] token, ARGV[2] slot ms, ARGV[3] task id, ARGV[4] now ms,
-- ARGV[5] kind: 'fire' | 'late' (fire a missed slot) | 'skip' (pass a missed slot) | 'baseline' (first sight),
-- ARGV[6] log cap, ARGV[7] log entry (JSON).
-- Returns 1 claimed, 0 slot already claimed (or passed), -1 not the leader, -2 paused.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('HGET', KEYS[2], 'paused') == '1' then return -2 end
local last = tonumber(redis.call('HGET', KEYS[2], 'last_slot_ms') or '-1')
local slot = tonumber(ARGV[2])
if slot <= last then return 0 end
local kind = ARGV[5]
if kind == 'baseline' then
  if last >= 0 then return 0 end
  redis.call('HSET', KEYS[2], 'last_slot_ms', ARGV[2])
  return 1
end
redis.call('HSET', KEYS[2], 'last_slot_ms', ARGV[2])
if kind == 'skip' then
  redis.call('HINCRBY', KEYS[2], 'skipped', 1)
else
  redis.call('HSET', KEYS[2], 'last_run_ms', ARGV[4], 'last_task_id', ARGV[3], 'last_source', kind)
  redis.call('HINCRBY', KEYS[2], 'fired', 1)
end
redis.call('LPUSH', KEYS[3], ARGV[7])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[6]) - 1)
return 1
