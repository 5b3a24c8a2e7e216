-- Fairness across accounts: what fetch, settle, fair_sweep, fair_set and
-- fair_read share (scripts.py puts it at the head of each; jobcore/fair.py has the rules).

-- An account's limit (0: none), its weight (its jobs per turn) and the jobs of
-- its weighted turn handed out so far (t:ACCOUNT, while such a turn lasts over
-- several fetches).
local function fair_limit(config, acct)
  local cfg = redis.call('HMGET', config, 'limit', 'm:' .. acct, 'w:' .. acct, 't:' .. acct)
  return tonumber(cfg[2] or cfg[1] or 0) or 0, math.max(1, tonumber(cfg[3] or 1) or 1), tonumber(cfg[4] or 0) or 0
end

-- An account's jobs handed out and not settled.
local function fair_running(running, acct)
  return tonumber(redis.call('ZSCORE', running, acct) or 0) or 0
end

-- Whether an account with `run` jobs running may take one more.
local function fair_room(config, acct, run)
  local lim = fair_limit(config, acct)
  return lim <= 0 or run < lim
end

-- An account that has jobs waiting goes in the ring, or in blocked when its
-- slots are all taken.
local function fair_place(config, ring, blocked, running, acct)
  if fair_room(config, acct, fair_running(running, acct)) then
    redis.call('RPUSH', ring, acct)
  else
    redis.call('SADD', blocked, acct)
  end
end

-- `n` of an account's slots come back (0: its limit was raised); an account
-- blocked at its limit goes back in the ring once it has a free slot.
local function fair_free(config, ring, blocked, running, acct, n)
  local run = tonumber(redis.call('ZINCRBY', running, -n, acct))
  if run <= 0 then redis.call('ZREM', running, acct) end
  if redis.call('SISMEMBER', blocked, acct) == 1 and fair_room(config, acct, run) then
    redis.call('SREM', blocked, acct)
    redis.call('RPUSH', ring, acct)
  end
end
