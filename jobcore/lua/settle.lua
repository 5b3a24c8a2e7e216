-- Settle deliveries of one type: ack, fail, dead-letter or release each one,
-- but only while `consumer` still owns it (a stale worker changes nothing).
-- KEYS: stream, stats, dead, failed
-- ARGV: group, consumer, failed_keep, then (kind, entry_id, attempt, text) repeated
-- A release with attempt 0 hands back a delivery that never started.
local stream, stats, dead, failed = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, consumer, keep = ARGV[1], ARGV[2], tonumber(ARGV[3])
local stale = {}
for i = 4, #ARGV, 4 do
  local kind, id, attempt, text = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local ok, p = pcall(redis.call, 'XPENDING', stream, group, id, id, 1, consumer)
  if not ok or #p == 0 then
    stale[#stale + 1] = id
  else
    if kind == 'ack' then
      redis.call('HINCRBY', stats, 'processed', 1)
    else
      local raw, stored = '', 0
      local e = redis.call('XRANGE', stream, id, id)
      if #e > 0 then
        local f = e[1][2]
        for j = 1, #f, 2 do
          if f[j] == 'd' then raw = f[j + 1] elseif f[j] == 'a' then stored = tonumber(f[j + 1]) or 0 end
        end
      end
      if kind == 'release' then
        local base = attempt - 1
        -- attempt 0: this delivery never started, so it does not count
        if attempt <= 0 then base = stored + p[1][4] - 1 end
        if base > 0 then
          redis.call('XADD', stream, '*', 'd', raw, 'a', base)
        else
          redis.call('XADD', stream, '*', 'd', raw)
        end
      elseif kind == 'fail' then
        redis.call('XADD', failed, 'MAXLEN', keep, '*', 'd', raw, 'r', text, 'n', attempt, 'w', consumer)
        redis.call('HINCRBY', stats, 'failed', 1)
      else
        redis.call('XADD', dead, '*', 'd', raw, 'r', text, 'n', attempt, 'w', consumer)
      end
    end
    redis.call('XACK', stream, group, id)
    redis.call('XDEL', stream, id)
  end
end
return stale
