-- Whether a lane has run every job added up to `fence` (ms): past the fence,
-- none of them waits (after the group's last-delivered id) or is in flight.
-- KEYS: stream; ARGV: group, fence ms
-- Returns 1 if drained, else 0
local t = redis.call('TIME')
if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) < tonumber(ARGV[2]) then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
local last, group = '0-0', false
for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local name, lastid
  for j = 1, #g, 2 do
    if g[j] == 'name' then name = g[j + 1] elseif g[j] == 'last-delivered-id' then lastid = g[j + 1] end
  end
  if name == ARGV[1] then last, group = lastid, true end
end
if #redis.call('XRANGE', KEYS[1], '(' .. last, ARGV[2], 'COUNT', 1) > 0 then return 0 end
if group and #redis.call('XPENDING', KEYS[1], ARGV[1], '-', ARGV[2], 1) > 0 then return 0 end
return 1
