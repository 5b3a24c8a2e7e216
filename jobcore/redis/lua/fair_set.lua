-- Change one lane's fairness settings, then put back in the ring every blocked
-- account that a raised limit gives a free slot (a lowered one is met at the
-- account's next turn). Fields set to '' are removed.
-- KEYS: fair hash, ring, blocked, running
-- ARGV: field, value, field, value... (on, limit, m:ACCOUNT, w:ACCOUNT)
-- Returns how many accounts went back in the ring.
local config, ring, blocked, running = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
-- `v`: this lane has had fairness (fetch.lua looks no further in a hash without it), kept for good.
redis.call('HSET', config, 'v', 1)
for i = 1, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', config, ARGV[i])
  else
    redis.call('HSET', config, ARGV[i], ARGV[i + 1])
  end
end
-- `lim`: whether any limit is set (fetch.lua takes uncontended jobs as they are only without one).
local limited = false
for _, field in ipairs(redis.call('HKEYS', config)) do
  if field == 'limit' or string.sub(field, 1, 2) == 'm:' then limited = true; break end
end
if limited then redis.call('HSET', config, 'lim', 1) else redis.call('HDEL', config, 'lim') end
local before = redis.call('SCARD', blocked)
for _, acct in ipairs(redis.call('SMEMBERS', blocked)) do fair_free(config, ring, blocked, running, acct, 0) end
return before - redis.call('SCARD', blocked)
