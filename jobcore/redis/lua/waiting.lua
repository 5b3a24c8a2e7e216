-- One stretch of a stream's waiting jobs (`jobcore pending`): up to `count`
-- entries from `start` ('-', an entry id, or '(' and one), less those in flight
-- (one XPENDING over the stretch), oldest first.
-- KEYS: stream; ARGV: group, start, count
-- Returns {the last entry id looked at when there may be more, or false,
--          {{entry id, payload or false}, ...}, entries looked at}
local stream, group, count = KEYS[1], ARGV[1], tonumber(ARGV[3])
local ok, e = pcall(redis.call, 'XRANGE', stream, ARGV[2], '+', 'COUNT', count)
if not ok or #e == 0 then return {false, {}, 0} end
local flying = {}
local held, rows = pcall(redis.call, 'XPENDING', stream, group, e[1][1], e[#e][1], count)
for _, row in ipairs(held and rows or {}) do flying[row[1]] = true end
local out = {}
for _, entry in ipairs(e) do
  if not flying[entry[1]] then
    local payload = false
    local f = entry[2]
    for j = 1, #f, 2 do
      if f[j] == 'd' then payload = f[j + 1]; break end
    end
    out[#out + 1] = {entry[1], payload}
  end
end
local more = false
if #e == count then more = e[#e][1] end
return {more, out, #e}
