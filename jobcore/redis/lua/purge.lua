-- Delete dead or failed jobs: the ids given (none: all of them), saying how many went.
-- KEYS: the set, then for the failed list its type's stats hash, whose `failed`
-- counter drops by as many in this same call (counts_lib.lua).
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
lower_failed(KEYS[2], n)
return n
