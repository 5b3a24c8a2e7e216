-- Take up to `count` new entries across the streams, taking turns from `first`:
-- one XREADGROUP with COUNT n would take n from every stream. A stream whose
-- stats hash holds `paused` (Queue.pause) is skipped, in the same step.
-- KEYS: streams, then their stats hashes (as many); ARGV: group, consumer, count, first (1-based)
-- Returns {{{stream index, entries}, ...}, {indexes of paused streams looked at}}
local group, consumer, left, first = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local n = #KEYS / 2
local out, paused = {}, {}
for k = 0, n - 1 do
  if left <= 0 then break end
  local i = (first - 1 + k) % n + 1
  if redis.call('HEXISTS', KEYS[n + i], 'paused') == 1 then
    paused[#paused + 1] = i
  else
    local r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', left, 'STREAMS', KEYS[i], '>')
    -- Redis: {{stream, entries}}, or nil when nothing is new. fakeredis (with
    -- redis-py 8) gives {stream, entries}, or an empty list.
    local entries = nil
    if r and r[1] then
      if type(r[1]) == 'table' then entries = r[1][2] else entries = r[2] end
    end
    if entries and #entries > 0 then
      out[#out + 1] = {i, entries}
      left = left - #entries
    end
  end
end
return {out, paused}
