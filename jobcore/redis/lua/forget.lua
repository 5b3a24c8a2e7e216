-- Drop a worker's record: always when ARGV[2] == '1' (it stopped), else only
-- while its lease is still lapsed (a worker that came back keeps its record).
-- KEYS: workers, leases; ARGV: worker id, force
if ARGV[2] ~= '1' then
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local score = redis.call('ZSCORE', KEYS[2], ARGV[1])
  if score and tonumber(score) >= now then return 0 end
end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
