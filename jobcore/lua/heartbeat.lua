-- Publish a worker's record and extend its lease by server time.
-- KEYS: workers, leases; ARGV: worker id, record json, lease ms
-- Returns 1 when the lease was still valid (or new), 0 when it had lapsed.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prev = redis.call('ZSCORE', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if prev and tonumber(prev) < now then return 0 end
return 1
