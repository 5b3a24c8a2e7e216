-- One step of a fair lane's sweep over its held hash (the jobs handed out):
-- a job whose pending entry is gone without a settle (its consumer deleted by
-- hand, Redis restarted from an older save) gives its account's slot back and,
-- while its entry is still in the stream, goes back on the queue (written again
-- at the end, taken in at the next fetch). An entry gone from the stream
-- (trimmed, deleted) only gives its slot back.
-- KEYS: stream, fair hash, ring, blocked, running, held; ARGV: group, cursor, count
-- Returns {next cursor ('0': the scan is over), slots given back, jobs put back}
local stream, config, ring, blocked, running, held = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local scan = redis.call('HSCAN', held, ARGV[2], 'COUNT', tonumber(ARGV[3]))
local rows, back, requeued = scan[2], 0, 0
for j = 1, #rows, 2 do
  local id, acct = rows[j], rows[j + 1]
  local ok, p = pcall(redis.call, 'XPENDING', stream, ARGV[1], id, id, 1)
  if not (ok and #p > 0) then
    redis.call('HDEL', held, id)
    fair_free(config, ring, blocked, running, acct, 1)
    back = back + 1
    local e = redis.call('XRANGE', stream, id, id)
    if ok and e[1] then
      redis.call('XADD', stream, '*', unpack(e[1][2]))
      redis.call('XDEL', stream, id)
      requeued = requeued + 1
    end
  end
end
return {scan[1], back, requeued}
