-- Put back on the queue jobs delivered to no one: entries up to the group's
-- last-delivered id that are in no consumer's pending list (a consumer deleted
-- while it held them). Settled jobs are deleted at once, so every other entry
-- up to that id is in flight, and this reads at most that many plus `limit`.
-- A fair lane is left alone: its waiting jobs are such entries (fetch.lua);
-- its handed-out jobs that lost their pending entry are put back by fair_sweep.lua.
-- KEYS: stream, the lane's fair hash, its waiting set; ARGV: group, limit
-- Returns how many were put back.
if redis.call('HEXISTS', KEYS[2], 'on') == 1 or redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok then return 0 end
local last, pel
for _, g in ipairs(groups) do
  local name, lastid, pending
  for j = 1, #g, 2 do
    if g[j] == 'name' then name = g[j + 1]
    elseif g[j] == 'last-delivered-id' then lastid = g[j + 1]
    elseif g[j] == 'pending' then pending = g[j + 1] end
  end
  if name == ARGV[1] then last, pel = lastid, pending end
end
if not last then return 0 end
local entries = redis.call('XRANGE', KEYS[1], '-', last, 'COUNT', pel + tonumber(ARGV[2]))
if #entries <= pel then return 0 end
local held = {}
local rows = redis.call('XPENDING', KEYS[1], ARGV[1], entries[1][1], entries[#entries][1], #entries)
for _, row in ipairs(rows) do held[row[1]] = true end
local n = 0
for _, e in ipairs(entries) do
  if not held[e[1]] then
    if #e[2] > 0 then
      redis.call('XADD', KEYS[1], '*', unpack(e[2]))
    else
      redis.call('XADD', KEYS[1], '*', 'd', '')
    end
    redis.call('XDEL', KEYS[1], e[1])
    n = n + 1
  end
end
return n
