#!lua
-- Append payloads to one lane's stream, each with its enqueue-once key (or
-- none), all in this one step: a key is taken together with its job, never one
-- without the other, on this server and on every replica. A key still live
-- adds nothing and answers with the id of the job that took it.
-- KEYS: stream, once hash (field -> job id), once_until sorted set (field -> lapse ms)
-- ARGV: ttl_ms, then triples: field ('' for a job without a key), job id, payload
-- Returns {created (1 when this call created the stream), then for each job
-- '' when added, else the id of the job that holds its key}.
local created = redis.call('EXISTS', KEYS[1]) == 0
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- Lapsed keys go a bounded step at a time, more each call than a call adds.
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 100)
if #lapsed > 0 then
  redis.call('HDEL', KEYS[2], unpack(lapsed))
  redis.call('ZREM', KEYS[3], unpack(lapsed))
end
local until_ms = now + tonumber(ARGV[1])
local out = {created and 1 or 0}
for i = 2, #ARGV, 3 do
  local field = ARGV[i]
  local first = false
  if field ~= '' then
    first = redis.call('HGET', KEYS[2], field)
    if first then
      local lapses = redis.call('ZSCORE', KEYS[3], field)
      if not lapses or tonumber(lapses) <= now then first = false end
    end
  end
  if first then
    out[#out + 1] = first
  else
    redis.call('XADD', KEYS[1], '*', 'd', ARGV[i + 2])
    if field ~= '' then
      redis.call('HSET', KEYS[2], field, ARGV[i + 1])
      redis.call('ZADD', KEYS[3], until_ms, field)
    end
    out[#out + 1] = ''
  end
end
return out
