-- What in-flight rows show of entries a reader has not seen before: their
-- payload and stored attempt base (an entry never changes while in flight, so a
-- reader keeps these and later asks XPENDING only who holds it and for how long).
-- KEYS: stream; ARGV: group, entry ids...
-- Returns per id {payload or false, `a` field or false} while it is in flight,
-- or false once it is not (settled since the reader listed it).
local stream, group = KEYS[1], ARGV[1]
local out = {}
for i = 2, #ARGV do
  local id = ARGV[i]
  local e = redis.call('XRANGE', stream, id, id)
  if #e > 0 then
    local d, a = false, false
    local f = e[1][2]
    for j = 1, #f, 2 do
      if f[j] == 'd' then d = f[j + 1] elseif f[j] == 'a' then a = f[j + 1] end
    end
    out[i - 1] = {d, a}
  else
    -- still pending without its entry (deleted by hand): a row with no payload
    local ok, p = pcall(redis.call, 'XPENDING', stream, group, id, id, 1)
    if ok and #p > 0 then out[i - 1] = {false, false} else out[i - 1] = false end
  end
end
return out
