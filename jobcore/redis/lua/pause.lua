-- Set or clear a type's paused flag on partition 0 and read its lanes in the
-- same step: a lane recorded after this sees the flag (lanes.lua returns it),
-- a lane recorded before is in the reply, so the caller flags every lane.
-- KEYS: partition 0's stats hash, the type's lanes string; ARGV: 1 to pause, 0 to resume
-- Returns the stored lanes (one a line) or false
if ARGV[1] == '1' then
  redis.call('HSET', KEYS[1], 'paused', 1)
else
  redis.call('HDEL', KEYS[1], 'paused')
end
return redis.call('GET', KEYS[2])
