-- One type's numbers, in time that does not grow with queue length: XLEN and
-- XINFO GROUPS read counters Redis keeps (the group's pending count, its
-- last-delivered id), and the oldest pending entry is one XRANGE step past that id
-- (a seek, then at most one stream node), however long the stream or its tombstones.
-- KEYS: stream, stats, dead, failed; ARGV: group
-- Returns {xlen, pel, oldest pending entry id or false, stats hash, dead len, failed len,
--          problems: the keys beside the stream that are not what jobcore wrote (they read as empty)}
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
local function beside(default, cmd, key)
  local r = redis.pcall(cmd, key)
  if type(r) == 'table' and r.err then
    problems[#problems + 1] = key .. ': ' .. r.err
    return default
  end
  return r
end
return {xlen, pel, oldest, beside({}, 'HGETALL', KEYS[2]), beside(0, 'XLEN', KEYS[3]),
        beside(0, 'XLEN', KEYS[4]), problems}
