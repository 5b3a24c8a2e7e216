-- Move dead or failed jobs back onto their type's stream as fresh jobs.
-- KEYS: stream, bad set, then for the failed list its type's stats hash, whose
-- `failed` counter drops by as many in this same call (counts_lib.lua).
-- ARGV: ids... (none: the oldest 1000)
local ids = {}
if #ARGV == 0 then
  for _, e in ipairs(redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1000)) do ids[#ids + 1] = e[1] end
else
  ids = ARGV
end
local n = 0
for _, id in ipairs(ids) do
  local e = redis.call('XRANGE', KEYS[2], id, id)
  if #e > 0 then
    local raw = ''
    local f = e[1][2]
    for j = 1, #f, 2 do
      if f[j] == 'd' then raw = f[j + 1] end
    end
    redis.call('XADD', KEYS[1], '*', 'd', raw)
    redis.call('XDEL', KEYS[2], id)
    n = n + 1
  end
end
lower_failed(KEYS[3], n)
return n
