-- Fairness across accounts: what fetch, settle, fair_sweep, fair_set and
-- fair_read share (scripts.py puts it at the head of each; jobcore/fair.py has the rules).
-- The fair hash's flags: `v` (ever fair), `on`, `lim` (some limit is set),
-- `wt` (some weight is set); without `lim` and `wt` no account's settings are read.

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

-- Whether the lane has a limit (nil: not known, so looked up).
local function fair_limited(config, limited)
  if limited == nil then return redis.call('HEXISTS', config, 'lim') == 1 end
  return limited
end

-- An account that has jobs waiting goes in the ring (then true), or in blocked
-- when its slots are all taken.
local function fair_place(config, ring, blocked, running, acct, limited)
  if not fair_limited(config, limited) or fair_room(config, acct, fair_running(running, acct)) then
    redis.call('RPUSH', ring, acct)
    return true
  end
  redis.call('SADD', blocked, acct)
  return false
end

-- `n` of an account's slots come back (0: its limit was raised); an account
-- blocked at its limit goes back in the ring once it has a free slot.
local function fair_free(config, ring, blocked, running, acct, n, limited)
  local run = 0
  if n ~= 0 then
    run = tonumber(redis.call('ZINCRBY', running, -n, acct))
    if run <= 0 then redis.call('ZREM', running, acct) end
  else
    run = fair_running(running, acct)
  end
  if fair_limited(config, limited) and redis.call('SISMEMBER', blocked, acct) == 1 and fair_room(config, acct, run) then
    redis.call('SREM', blocked, acct)
    redis.call('RPUSH', ring, acct)
    -- Workers waiting for this lane's next job (they found every account at its
    -- limit) wake on this stream (keys.py FairKeys.wake) and fetch again.
    redis.call('XADD', config .. ':wake', 'MAXLEN', 1, '*', 'a', acct)
  end
end
