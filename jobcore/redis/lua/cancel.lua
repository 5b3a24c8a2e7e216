-- Ask a worker to cancel one of its jobs: only while its lease is live (a lost
-- worker runs nothing; its jobs are taken over). The list expires on its own,
-- so a request nobody takes does not stay.
-- KEYS: leases, the worker's cancel list; ARGV: worker id, ttl ms, then the
-- request's items (pushed together, in order)
-- Returns 1 (asked) or 0 (no live lease: nothing asked)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not deadline or tonumber(deadline) < now then return 0 end
redis.call('RPUSH', KEYS[2], unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]))
return 1
