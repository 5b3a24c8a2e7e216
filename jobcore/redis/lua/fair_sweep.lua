-- Give back the slots of jobs that left a fair lane's stream without a settle
-- (dead-lettered by a recovery, their consumer deleted by hand, the stream
-- trimmed or flushed): one step of a scan over the held hash.
-- KEYS: stream, fair hash, ring, blocked, running, held; ARGV: group, cursor, count
-- Returns {next cursor ('0': the scan is over), slots given back}
local stream, config, ring, blocked, running, held = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local scan = redis.call('HSCAN', held, ARGV[2], 'COUNT', tonumber(ARGV[3]))
local rows, back = scan[2], 0
for j = 1, #rows, 2 do
  local id, acct = rows[j], rows[j + 1]
  local ok, p = pcall(redis.call, 'XPENDING', stream, ARGV[1], id, id, 1)
  if not (ok and #p > 0) then
    redis.call('HDEL', held, id)
    local run = tonumber(redis.call('ZINCRBY', running, -1, acct))
    if run <= 0 then redis.call('ZREM', running, acct) end
    if redis.call('SISMEMBER', blocked, acct) == 1 then
      local cfg = redis.call('HMGET', config, 'limit', 'm:' .. acct)
      local lim = tonumber(cfg[2] or cfg[1] or 0) or 0
      if lim <= 0 or run < lim then
        redis.call('SREM', blocked, acct)
        redis.call('RPUSH', ring, acct)
      end
    end
    back = back + 1
  end
end
return {scan[1], back}
