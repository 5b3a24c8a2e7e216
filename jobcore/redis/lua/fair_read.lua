-- One lane's fairness as operators see it: the settings, how many accounts
-- wait, the top ones by waiting and by running, and the blocked ones (at most
-- `top` of each; with 0 the settings and counts alone, no list and no sum).
-- An operator's read, in time that grows with the accounts waiting up to LOOK
-- of them (each queue's length read); past that, LOOK at random are read.
-- Jobs running per account: the slot counts while a limit is set, else counted
-- from the lane's pending list (every job in flight; up to LOOK of them, each
-- entry's account read from its payload).
-- KEYS: fair hash, ring, blocked, waiting, running, stream; ARGV: top, group
-- Returns {settings (flat pairs), accounts waiting, {account, waiting}...,
--          {account, running}..., {{account, waiting, running, limit}} of blocked ones (up to top), how many blocked,
--          jobs in the accounts' queues read, accounts read (0: all of them)}
local LOOK = 10000
local config, blocked, waiting, running, stream = KEYS[1], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local top, group = tonumber(ARGV[1]), ARGV[2]
local settings = redis.call('HGETALL', config)
local placed = redis.call('SCARD', waiting)
if top <= 0 then return {settings, placed, {}, {}, {}, redis.call('SCARD', blocked), 0, 0} end
local sampled = placed > LOOK
local members = sampled and redis.call('SRANDMEMBER', waiting, LOOK) or redis.call('SMEMBERS', waiting)
local function most(rows)
  table.sort(rows, function(a, b) return a[2] > b[2] or (a[2] == b[2] and a[1] < b[1]) end)
  local flat = {}
  for j = 1, math.min(top, #rows) do
    flat[#flat + 1] = rows[j][1]
    flat[#flat + 1] = rows[j][2]
  end
  return flat
end
local rows, queued = {}, 0
for _, acct in ipairs(members) do
  local n = redis.call('LLEN', config .. ':q:' .. acct)
  if n > 0 then
    rows[#rows + 1] = {acct, n}
    queued = queued + n
  end
end
-- An account served its last job keeps its place until its next turn: not counted.
local accounts = sampled and placed or #rows
local waiting_top = most(rows)
local running_top
if redis.call('HEXISTS', config, 'lim') == 1 then
  running_top = redis.call('ZREVRANGE', running, 0, top - 1, 'WITHSCORES')
else
  local counts, list = {}, {}
  local ok, rows = pcall(redis.call, 'XPENDING', stream, group, '-', '+', LOOK)
  for _, row in ipairs(ok and rows or {}) do
    local e = redis.call('XRANGE', stream, row[1], row[1])[1]
    local acct = ''
    if e then
      for j = 1, #e[2], 2 do
        if e[2][j] == 'd' then acct = account_of(e[2][j + 1]); break end
      end
    end
    if acct ~= '' then counts[acct] = (counts[acct] or 0) + 1 end
  end
  for acct, n in pairs(counts) do list[#list + 1] = {acct, n} end
  running_top = most(list)
end
local blocked_rows = {}
for _, acct in ipairs(redis.call('SRANDMEMBER', blocked, top)) do
  blocked_rows[#blocked_rows + 1] = {acct, redis.call('LLEN', config .. ':q:' .. acct), fair_running(running, acct),
    (fair_limit(config, acct))}
end
return {settings, accounts, waiting_top, running_top, blocked_rows, redis.call('SCARD', blocked), queued,
        sampled and #members or 0}
