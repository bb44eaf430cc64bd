-- Acknowledge what the worker finished, then take the next messages and put them in flight under a lease
-- in the same step (nothing is ever between), and start the tasks they carry (the start write of
-- run_start.lua, done here so that a task's process makes no round trip before its body).
-- KEYS: b groups, one per queue in the order to take from, each of 4 + p keys: the queue's unacked hash
-- (tag -> [message, exchange, routing key]), its lease index zset (tag -> time), its bell list, its
-- quarantine hash, then its p lists in the order to take from.
-- ARGV[1] now (the worker's clock, as kombu's lease checks use), ARGV[2] b, ARGV[3] p, ARGV[4] most
-- messages to take; then, per queue in KEYS' order, its name, a count and the tags of finished deliveries of
-- that queue to acknowledge first (their unacked entry and lease go); then the worker's name, or '' to start
-- nothing here. When starting, then: what taskplane.redis.keys names around a queue's name (Keys.halves:
-- the two halves of the record, the cancel marker, the events channel, the name index, the queue index and
-- the state index, each a pair), the record retention (s), the payload limit (bytes, 0 for none: a larger
-- message is dead-lettered by the worker, not started), the count of indexed states and their names
-- (record_lib.lua's order), and the names of tasks this script must not start (those with a rate limit:
-- their start also reserves a slot, keyed by their arguments, so their process starts them). A message
-- with an ETA or an expiry is not started here either (Celery's main process may hold or drop it). A task is
-- started under the queue it was taken from, whatever its message's routing key says (the worker reads it
-- so: taskplane.celery.intake.taken_from), so every key a start writes is in the slot of that queue.
-- One LMPOP takes up to ARGV[4] messages from the first non-empty list, so tier and priority order hold.
-- Bells are not popped per message: they are cleared when every list is empty.
-- Returns {} when every list is empty; else {list, item, tag, start, item, tag, start, ...}, every message
-- in flight in the unacked hash and lease index of the queue of that list. A tag of false marks an item
-- that is not a kombu message: it waits in its queue's quarantine hash (field: sha1 of the item; value: the
-- list's name, a newline, the item) until it is dead-lettered. A start of false: not started here; else
-- '<verdict>:<deliveries>' with run_start.lua's verdict codes: '1:0' cancelled, '2:0' already succeeded
-- (nothing written for either), '0:' and the deliveries of this attempt so far (the record says started).
local b, p = tonumber(ARGV[2]), tonumber(ARGV[3])
local g = 4 + p
local s = 5
local queue_of = {}  -- a group's offset in KEYS (i * g, the base below) -> the name of its queue
for i = 0, b - 1 do
  queue_of[i * g] = ARGV[s]
  local a = tonumber(ARGV[s + 1])
  if a > 0 then
    redis.call('HDEL', KEYS[i * g + 1], unpack(ARGV, s + 2, s + 1 + a))
    redis.call('ZREM', KEYS[i * g + 2], unpack(ARGV, s + 2, s + 1 + a))
  end
  s = s + 2 + a
end
local pop = {b * p}
for i = 0, b - 1 do
  for j = 1, p do pop[#pop + 1] = KEYS[i * g + 4 + j] end
end
pop[#pop + 1], pop[#pop + 2], pop[#pop + 3] = 'RIGHT', 'COUNT', tonumber(ARGV[4])
local taken = redis.call('LMPOP', unpack(pop))
if not taken then
  -- Whatever bells are still rung were for messages already taken: silence them, so that the wait that
  -- follows blocks until the next publish.
  local bells = {}
  for i = 0, b - 1 do bells[i + 1] = KEYS[i * g + 3] end
  redis.call('DEL', unpack(bells))
  return {}
end
local list = taken[1]
-- The group of the queue of the list the items came from (LMPOP names one of KEYS).
local base = 0
for i = 0, b - 1 do
  for j = 1, p do
    if KEYS[i * g + 4 + j] == list then base = i * g end
  end
end
local worker = ARGV[s]
local record_b, record_a, cancel_b, cancel_a, events_b, events_a = unpack(ARGV, s + 1, s + 6)
local name_b, name_a, queue_b, queue_a, state_b, state_a = unpack(ARGV, s + 7, s + 12)
local ttl, limit, nstates = ARGV[s + 13], tonumber(ARGV[s + 14]), tonumber(ARGV[s + 15] or 0)
local states = {unpack(ARGV, s + 16, s + 15 + nstates)}
local skipped = {}
for i = s + 16 + nstates, #ARGV do skipped[ARGV[i]] = true end
local now_ms = string.format('%.0f', tonumber(ARGV[1]) * 1000)
local names_of = {}  -- queue -> the names of its keys a start writes (each made once per call)

-- What a start names for one queue: key prefixes to which an id or a task name is appended, its queue
-- index, and its record indexes by state (record_lib.lua's keys[5..]).
local function names(queue)
  local made = names_of[queue]
  if not made then
    made = {record = record_b .. queue .. record_a, cancel = cancel_b .. queue .. cancel_a,
      events = events_b .. queue .. events_a, by_name = name_b .. queue .. name_a, index = queue_b .. queue .. queue_a,
      states = {}}
    for i, state in ipairs(states) do made.states[i] = state_b .. queue .. state_a .. state end
    names_of[queue] = made
  end
  return made
end

-- Starts the task of one message (start_lib.lua); returns the verdict as the worker hands it on, or false.
local function start_message(headers, queue)
  local id, name, retries = headers['id'], headers['task'], headers['retries']
  if retries == nil or retries == cjson.null then retries = 0 end
  local eta, expires = headers['eta'], headers['expires']
  if (eta ~= nil and eta ~= cjson.null) or (expires ~= nil and expires ~= cjson.null)
      or type(id) ~= 'string' or id == '' or type(name) ~= 'string' or name == '' or skipped[name]
      or type(queue) ~= 'string' or queue == '' or type(retries) ~= 'number' or retries < 0
      or retries % 1 ~= 0 then
    return false
  end
  local made = names(queue)
  local record = made.record .. id
  local seen, refusal = refused(record, made.cancel .. id)
  if refusal > 0 then return refusal .. ':0' end
  -- the attempt whose deliveries are counted: its retries, and how often Celery's replace() replaced it
  -- (a replacement keeps the task id: it is a new attempt, not a redelivery). As record_model.delivery_attempt.
  local attempt = string.format('%d', retries)
  local nesting = headers['replaced_task_nesting']
  if type(nesting) == 'number' and nesting >= 1 then attempt = attempt .. '.' .. string.format('%d', nesting) end
  local keys = {record, made.by_name .. name, made.index, made.events .. id, unpack(made.states)}
  local deliveries = start(keys, {
    -1, now_ms, ttl, 0, id, 'name', name, 'queue', queue, 'updated_ms', now_ms, 'started_ms', now_ms,
    'attempts', retries + 1, 'retries', string.format('%d', retries), 'worker', worker, 'state', 'started'},
    seen, attempt)
  return '0:' .. deliveries
end

local reply = {list}
local entries, leases = {}, {}
for _, item in ipairs(taken[2]) do
  local ok, message = pcall(cjson.decode, item)
  local properties = ok and type(message) == 'table' and message['properties']
  local info = type(properties) == 'table' and properties['delivery_info']
  local tag = type(properties) == 'table' and properties['delivery_tag']
  local started = false
  if type(message) == 'table' and type(message['body']) == 'string' and type(info) == 'table'
      and (type(tag) == 'string' or type(tag) == 'number')
      and (message['headers'] == nil or type(message['headers']) == 'table') then
    tag = tostring(tag)
    local exchange = info['exchange'] or ''
    local routing_key = info['routing_key'] or ''
    -- The item is kept as it came (re-encoding it would turn [null, null] into {}).
    entries[#entries + 1] = tag
    entries[#entries + 1] = '[' .. item .. ',' .. cjson.encode(exchange) .. ',' .. cjson.encode(routing_key) .. ']'
    leases[#leases + 1] = ARGV[1]
    leases[#leases + 1] = tag
    if worker ~= '' and message['headers'] and (limit == 0 or #item <= limit) then
      started = start_message(message['headers'], queue_of[base])
    end
  else
    redis.call('HSET', KEYS[base + 4], redis.sha1hex(item), list .. '\n' .. item)  -- the item's bytes as they were
    tag = false
  end
  reply[#reply + 1] = item
  reply[#reply + 1] = tag
  reply[#reply + 1] = started
end
if #entries > 0 then
  redis.call('HSET', KEYS[base + 1], unpack(entries))
  redis.call('ZADD', KEYS[base + 2], unpack(leases))
end
return reply
