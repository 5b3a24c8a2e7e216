#!lua flags=allow-oom
-- Extend a worker's lease by server time (even when Redis is full), but only
-- while its record exists:
-- a worker that stopped or was forgotten is never brought back by this.
-- KEYS: workers, leases; ARGV: worker id, lease ms
-- Returns 1 (extended), 0 (extended, but it had lapsed), -1 (no such worker)
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return -1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prev = redis.call('ZSCORE', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
if prev and tonumber(prev) < now then return 0 end
return 1
