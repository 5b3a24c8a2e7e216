-- One step of a fair lane's sweep over its held hash (the jobs handed out):
-- a job whose pending entry is gone without a settle (its consumer deleted by
-- hand, Redis restarted from an older save) gives its account's slot back and,
-- while its entry is still in the stream, waits again at the head of its
-- account's queue (it came before the rest). An entry gone from the stream
-- (trimmed, deleted) only gives its slot back.
-- KEYS: stream, fair hash, ring, blocked, waiting, running, held; ARGV: group, cursor, count
-- Returns {next cursor ('0': the scan is over), slots given back, jobs put back}
local stream, config, ring, blocked, waiting, running, held = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
local scan = redis.call('HSCAN', held, ARGV[2], 'COUNT', tonumber(ARGV[3]))
local rows, back, requeued = scan[2], 0, 0
local limited = redis.call('HEXISTS', config, 'lim') == 1
for j = 1, #rows, 2 do
  local id, acct = rows[j], rows[j + 1]
  local ok, p = pcall(redis.call, 'XPENDING', stream, ARGV[1], id, id, 1)
  if not (ok and #p > 0) then
    redis.call('HDEL', held, id)
    if limited then fair_free(config, ring, blocked, running, acct, 1, true) end
    back = back + 1
    if ok and redis.call('XRANGE', stream, id, id)[1] then
      if redis.call('LPUSH', config .. ':q:' .. acct, id) == 1 and redis.call('SADD', waiting, acct) == 1 then
        fair_place(config, ring, blocked, running, acct, limited)
      end
      requeued = requeued + 1
    end
  end
end
return {scan[1], back, requeued}
