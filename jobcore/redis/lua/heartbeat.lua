#!lua flags=allow-oom
-- Publish a worker's record and extend its lease by server time (even when
-- Redis is full: a lapsed lease would have others run this worker's jobs again).
-- KEYS: workers, leases; ARGV: worker id, record json, lease ms, instance ('' for none)
-- Returns 1 (held), 0 (it had lapsed), 2 (there was none: new, or the record
-- is gone), -1 (another instance of this worker id holds a live lease: nothing
-- is changed).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local prev = redis.call('ZSCORE', KEYS[2], ARGV[1])
if ARGV[4] ~= '' and prev and tonumber(prev) >= now then
  local rec = redis.call('HGET', KEYS[1], ARGV[1])
  if rec then
    local ok, d = pcall(cjson.decode, rec)
    if ok and type(d) == 'table' and type(d.instance) == 'string' and d.instance ~= ARGV[4] then return -1 end
  end
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
if not prev then return 2 end
if tonumber(prev) < now then return 0 end
return 1
