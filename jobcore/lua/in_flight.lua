-- Up to `limit` in-flight jobs of one type with their payloads.
-- KEYS: stream; ARGV: group, limit
-- Returns {{id, consumer, idle ms, attempt, payload or false}, ...}
local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], '-', '+', tonumber(ARGV[2]))
if not ok then return {} end
local out = {}
for i, row in ipairs(p) do
  local d, base = false, 0
  local e = redis.call('XRANGE', KEYS[1], row[1], row[1])
  if #e > 0 then
    local f = e[1][2]
    for j = 1, #f, 2 do
      if f[j] == 'd' then d = f[j + 1] elseif f[j] == 'a' then base = tonumber(f[j + 1]) or 0 end
    end
  end
  out[i] = {row[1], row[2], row[3], row[4] + base, d}
end
return out
