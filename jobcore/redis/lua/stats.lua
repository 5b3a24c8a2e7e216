-- One type's numbers, in time that does not grow with queue length: XLEN and
-- XINFO GROUPS read counters Redis keeps (the group's pending count, its
-- last-delivered id), and the oldest pending entry is one XRANGE step past that id
-- (a seek, then at most one stream node), however long the stream or its tombstones.
-- A fair lane's waiting jobs are taken in (read, not pending) before their
-- turn: older than the group's last-delivered id, among the oldest entries of
-- the stream with the jobs handed out before them; the first FAIR_LOOK are
-- looked at (past that many in flight ahead of it, the oldest age reads young).
-- KEYS: stream, stats, dead, failed, the lane's fair hash, its waiting set; ARGV: group
-- Returns {xlen, pel, oldest pending entry id or false, stats hash, dead len, failed len,
--          problems: the keys beside the stream that are not what jobcore wrote (they read as empty),
--          1 if the lane is fair, accounts with jobs waiting}
local FAIR_LOOK = 200
local xlen = redis.call('XLEN', KEYS[1])
local pel, last = 0, '0-0'
if xlen > 0 or redis.call('EXISTS', KEYS[1]) == 1 then
  local groups = redis.call('XINFO', 'GROUPS', KEYS[1])
  for _, g in ipairs(groups) do
    local name, pending, lastid
    for j = 1, #g, 2 do
      if g[j] == 'name' then name = g[j + 1]
      elseif g[j] == 'pending' then pending = g[j + 1]
      elseif g[j] == 'last-delivered-id' then lastid = g[j + 1] end
    end
    if name == ARGV[1] then pel, last = pending, lastid end
  end
end
local oldest = false
if xlen > pel then
  local r = redis.call('XRANGE', KEYS[1], '(' .. last, '+', 'COUNT', 1)
  if #r > 0 then oldest = r[1][1] end
end
local problems = {}
local function beside(default, cmd, key, ...)
  local r = redis.pcall(cmd, key, ...)
  if type(r) == 'table' and r.err then
    problems[#problems + 1] = key .. ': ' .. r.err
    return default
  end
  return r
end
-- Accounts with a place in turn (one served its last job keeps it until its
-- next turn: an upper bound, and 0 when nothing waits).
local fair, accounts = beside(0, 'HEXISTS', KEYS[5], 'on'), beside(0, 'SCARD', KEYS[6])
if xlen <= pel then accounts = 0 end
if accounts ~= 0 and xlen > pel then
  -- The first entry not in flight among the stream's first ones (in flight
  -- there: jobs handed out before it, each kept in place), one XPENDING for all.
  local head = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', FAIR_LOOK)
  if #head > 0 then
    local ok, rows = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], head[1][1], head[#head][1], #head)
    local flying = {}
    for _, row in ipairs(ok and rows or {}) do flying[row[1]] = true end
    for _, e in ipairs(head) do
      if not flying[e[1]] then
        local a1, a2 = string.match(e[1], '^(%d+)-(%d+)$')
        local b1, b2 = string.match(oldest or '', '^(%d+)-(%d+)$')
        if not b1 or tonumber(a1) < tonumber(b1) or (a1 == b1 and tonumber(a2) < tonumber(b2)) then oldest = e[1] end
        break
      end
    end
  end
end
return {xlen, pel, oldest, beside({}, 'HGETALL', KEYS[2]), beside(0, 'XLEN', KEYS[3]),
        beside(0, 'XLEN', KEYS[4]), problems, fair, accounts}
