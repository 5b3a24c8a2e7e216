-- Remove one lane of a type (`jobcore types remove`): every key of it, its
-- accounts' lists too, but only while its stream holds no job (none waiting,
-- none in flight: settled jobs leave it), checked in the same step.
-- KEYS: stream, stats, dead, failed, history, fair hash, ring, blocked, waiting,
--       running, held, wake, once, once_until, then (lane 0) the type's lanes and gate keys
-- Returns the jobs its stream holds (0: removed).
local left = redis.call('XLEN', KEYS[1])
if left > 0 then return left end
for _, acct in ipairs(redis.call('SMEMBERS', KEYS[9])) do redis.call('DEL', KEYS[6] .. ':q:' .. acct) end
redis.call('DEL', unpack(KEYS))
return 0
