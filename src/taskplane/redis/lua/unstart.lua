-- Undo the fetch's start of a task whose message went back to its queue before any process took it up
-- (a closing worker's prefetched messages): start_lib.lua's unstart. KEYS and ARGV: record_lib.lua's, for
-- the state queued. Returns 1 if undone, 0 if the record had moved on.
return unstart(KEYS, ARGV)
