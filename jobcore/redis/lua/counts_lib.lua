-- A type's failed counter follows its failed list (requeue and purge put at the
-- head of their script by scripts.py): it counts the failed jobs held or dropped
-- by the cap, so `failed` minus the list's length is what the cap dropped.

-- `n` jobs left the failed list; a counter that is not a number is left as it is (stats name it).
local function lower_failed(stats, n)
  if not stats or n <= 0 then return end
  local cur = tonumber(redis.pcall('HGET', stats, 'failed'))
  if cur and cur > 0 then redis.pcall('HINCRBY', stats, 'failed', -math.min(cur, n)) end
end
