-- Change one lane's fairness settings, then put back in the ring every blocked
-- account that a raised limit gives a free slot (a lowered one is met at the
-- account's next turn). Fields set to '' are removed. Slots are counted only
-- while some limit is set: the first limit counts them from the jobs handed
-- out (held), and removing the last one drops the count and every block.
-- KEYS: fair hash, ring, blocked, running, held, stream
-- ARGV: group, then field, value, field, value... (on, limit, m:ACCOUNT, w:ACCOUNT)
-- Returns how many accounts went back in the ring.
local config, ring, blocked, running, held, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local was = redis.call('HEXISTS', config, 'lim') == 1
-- `v`: this lane has had fairness (fetch.lua looks no further in a hash without it), kept for good.
redis.call('HSET', config, 'v', 1)
for i = 2, #ARGV, 2 do
  if ARGV[i + 1] == '' then
    redis.call('HDEL', config, ARGV[i])
  else
    redis.call('HSET', config, ARGV[i], ARGV[i + 1])
  end
end
-- `lim`: whether any limit is set (fetch.lua takes uncontended jobs as they are
-- only without one); `wt`: whether any weight is (without either, fetch.lua
-- reads no account's settings).
local limited, weighted = false, false
for _, field in ipairs(redis.call('HKEYS', config)) do
  local head = string.sub(field, 1, 2)
  if field == 'limit' or head == 'm:' then limited = true elseif head == 'w:' then weighted = true end
end
if limited then redis.call('HSET', config, 'lim', 1) else redis.call('HDEL', config, 'lim') end
if weighted then redis.call('HSET', config, 'wt', 1) else redis.call('HDEL', config, 'wt') end
if was and not limited then
  redis.call('DEL', running)
  local freed = redis.call('SMEMBERS', blocked)
  redis.call('DEL', blocked)
  for j = 1, #freed, 1000 do redis.call('RPUSH', ring, unpack(freed, j, math.min(j + 999, #freed))) end
  if #freed > 0 then redis.call('XADD', config .. ':wake', 'MAXLEN', 1, '*', 'a', freed[1]) end -- as fair_free
  return #freed
end
if limited and not was then
  -- Every job in flight holds a slot, those taken uncontended (read as a plain
  -- type's, not through the ring) too: each goes in held with its account.
  local ok, rows = pcall(redis.call, 'XPENDING', stream, ARGV[1], '-', '+', 1000000000)
  for _, row in ipairs(ok and rows or {}) do
    if redis.call('HEXISTS', held, row[1]) == 0 then
      local e = redis.call('XRANGE', stream, row[1], row[1])[1]
      if e then
        local acct = ''
        for j = 1, #e[2], 2 do
          if e[2][j] == 'd' then acct = account_of(e[2][j + 1]); break end
        end
        redis.call('HSET', held, row[1], acct)
      end
    end
  end
  redis.call('DEL', running)
  local counts, order = {}, {}
  for _, acct in ipairs(redis.call('HVALS', held)) do
    if not counts[acct] then counts[acct] = 0; order[#order + 1] = acct end
    counts[acct] = counts[acct] + 1
  end
  for _, acct in ipairs(order) do redis.call('ZADD', running, counts[acct], acct) end
end
local before = redis.call('SCARD', blocked)
for _, acct in ipairs(redis.call('SMEMBERS', blocked)) do fair_free(config, ring, blocked, running, acct, 0, true) end
return before - redis.call('SCARD', blocked)
