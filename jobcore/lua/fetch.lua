-- Take up to `count` new entries across the streams, taking turns from `first`:
-- one XREADGROUP with COUNT n would take n from every stream.
-- KEYS: streams; ARGV: group, consumer, count, first (1-based)
-- Returns {{stream index, entries}, ...}
local group, consumer, left, first = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local n = #KEYS
local out = {}
for k = 0, n - 1 do
  if left <= 0 then break end
  local i = (first - 1 + k) % n + 1
  local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', left, 'STREAMS', KEYS[i], '>')
  if r then
    local entries = r[1][2]
    out[#out + 1] = {i, entries}
    left = left - #entries
  end
end
return out
