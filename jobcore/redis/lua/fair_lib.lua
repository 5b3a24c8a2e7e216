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

-- The account of a payload, from the envelope's head (jobcore/model.py: a
-- version byte, then a msgpack array: the id's 16 bytes, the type, the account
-- id), without reading the args. '' when it is not an envelope of ours.
local function account_of(d)
  if not d or #d < 22 then return '' end
  local version, b, bin, len = string.byte(d, 1, 4)
  if version ~= 1 or b < 0x90 or b > 0x9f or bin ~= 0xc4 or len ~= 16 then return '' end
  local at = 21
  local t = string.byte(d, at)
  if not t then return '' end
  if t >= 0xa0 and t <= 0xbf then at = at + 1 + (t - 0xa0)
  elseif t == 0xd9 then at = at + 2 + (string.byte(d, at + 1) or 0)
  elseif t == 0xda then at = at + 3 + (string.byte(d, at + 1) or 0) * 256 + (string.byte(d, at + 2) or 0)
  else return '' end
  local c = string.byte(d, at)
  if not c then return '' end
  if c <= 0x7f then return tostring(c) end
  if c >= 0xe0 then return tostring(c - 256) end
  local size = ({[0xcc] = 1, [0xcd] = 2, [0xce] = 4, [0xcf] = 8, [0xd0] = 1, [0xd1] = 2, [0xd2] = 4, [0xd3] = 8})[c]
  if not size or #d < at + size then return '' end
  local bytes = {string.byte(d, at + 1, at + size)}
  local negative = c >= 0xd0 and bytes[1] >= 0x80
  -- Past 2^53 a Lua number is not exact: such an account is known by its bytes.
  if size == 8 and not (bytes[1] <= 0x1f or (negative and bytes[1] >= 0xe0)) then
    return 'x' .. string.gsub(string.sub(d, at + 1, at + 8), '.', function(ch) return string.format('%02x', string.byte(ch)) end)
  end
  local v = 0
  for k = 1, size do
    if negative then v = v * 256 + (255 - bytes[k]) else v = v * 256 + bytes[k] end
  end
  if negative then v = -(v + 1) end
  return string.format('%d', v)
end
