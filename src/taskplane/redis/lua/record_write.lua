-- Write fields of a task record, keep its indexes in step and publish the change (see record_lib.lua for
-- KEYS and ARGV). Returns the record's created_ms.
return write_record(KEYS, ARGV, redis.call('HMGET', KEYS[1], 'created_ms', 'state', 'version'))
