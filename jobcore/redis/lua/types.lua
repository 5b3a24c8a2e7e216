-- List job types in the namespace's type set, as a script so that it goes with
-- the enqueue's replica confirmation (run_scripts' WAIT).
-- KEYS: the type set; ARGV: types
return redis.call('SADD', KEYS[1], unpack(ARGV))
