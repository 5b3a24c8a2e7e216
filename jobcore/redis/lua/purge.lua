-- Empty a dead or failed set, saying how many it held.
-- KEYS: the set
local n = redis.call('XLEN', KEYS[1])
redis.call('DEL', KEYS[1])
return n
