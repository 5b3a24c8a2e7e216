-- Fairness across accounts: what fetch, settle, fair_sweep and fair_set share
-- (scripts.py puts it at the head of each; jobcore/fair.py has the rules).

-- An account's limit (0: none), its weight (its jobs per turn) and the jobs of
-- its weighted turn handed out so far (t:ACCOUNT, while such a turn lasts over
-- several fetches).
local function fair_limit(config, acct)
  local cfg = redis.call('HMGET', config, 'limit', 'm:' .. acct, 'w:' .. acct, 't:' .. acct)
  return tonumber(cfg[2] or cfg[1] or 0) or 0, math.max(1, tonumber(cfg[3] or 1) or 1), tonumber(cfg[4] or 0) or 0
end

-- `n` of an account's slots come back (0: its limit was raised); an account
-- blocked at its limit goes back in the ring once it has a free slot.
local function fair_free(config, ring, blocked, running, acct, n)
  local run = tonumber(redis.call('ZINCRBY', running, -n, acct))
  if run <= 0 then redis.call('ZREM', running, acct) end
  if redis.call('SISMEMBER', blocked, acct) == 1 then
    local lim = fair_limit(config, acct)
    if lim <= 0 or run < lim then
      redis.call('SREM', blocked, acct)
      redis.call('RPUSH', ring, acct)
    end
  end
end
