#!lua flags=allow-oom
-- Extend a worker's lease by server time (even when Redis is full), but only
-- while its record exists and names this instance (ARGV[3], '' for any):
-- a worker that stopped or was forgotten is never brought back by this, nor
-- is another process that took the same worker id kept alive by it.
-- KEYS: workers, leases; ARGV: worker id, lease ms, instance
-- Returns 1 (extended), 0 (extended, but it had lapsed), -1 (no such worker),
-- -2 (another instance holds the id)
local rec = redis.call('HGET', KEYS[1], ARGV[1])
if not rec then return -1 end
if ARGV[3] and ARGV[3] ~= '' then
  local ok, d = pcall(cjson.decode, rec)
  if ok and type(d) == 'table' and type(d.instance) == 'string' and d.instance ~= ARGV[3] then return -2 end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prev = redis.call('ZSCORE', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[1])
if prev and tonumber(prev) < now then return 0 end
return 1
