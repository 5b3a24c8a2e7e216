-- Delete dead or failed jobs: the ids given (none: all of them), saying how many went.
-- KEYS: the set, then for the failed list its type's stats hash, whose `failed`
-- counter drops by as many in this same call: it counts the failed jobs held or
-- dropped by the cap, so `failed` minus the list's length is what the cap dropped.
-- ARGV: ids...
local n
if #ARGV == 0 then
  n = redis.call('XLEN', KEYS[1])
  redis.call('DEL', KEYS[1])
else
  n = 0
  for i = 1, #ARGV, 1000 do
    n = n + redis.call('XDEL', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
end
if KEYS[2] and n > 0 then
  -- A counter that is not a number is left as it is (stats name it).
  local cur = tonumber(redis.pcall('HGET', KEYS[2], 'failed'))
  if cur and cur > 0 then redis.pcall('HINCRBY', KEYS[2], 'failed', -math.min(cur, n)) end
end
return n
