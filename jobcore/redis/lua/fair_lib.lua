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
-- Read for every job a fair lane takes in: no table is built on the usual paths.
local INT_SIZES = {[0xcc] = 1, [0xcd] = 2, [0xce] = 4, [0xcf] = 8, [0xd0] = 1, [0xd1] = 2, [0xd2] = 4, [0xd3] = 8}
local function account_of(d)
  if not d or #d < 22 then return '' end
  local byte = string.byte
  local version, b, bin, len = byte(d, 1, 4)
  if version ~= 1 or b < 0x90 or b > 0x9f or bin ~= 0xc4 or len ~= 16 then return '' end
  local at = 21
  local t = byte(d, at)
  if not t then return '' end
  if t >= 0xa0 and t <= 0xbf then at = at + 1 + (t - 0xa0)
  elseif t == 0xd9 then at = at + 2 + (byte(d, at + 1) or 0)
  elseif t == 0xda then at = at + 3 + (byte(d, at + 1) or 0) * 256 + (byte(d, at + 2) or 0)
  else return '' end
  local c = byte(d, at)
  if not c then return '' end
  if c <= 0x7f then return tostring(c) end
  if c >= 0xe0 then return tostring(c - 256) end
  if c == 0xcd then
    local h, l = byte(d, at + 1, at + 2)
    if not l then return '' end
    return tostring(h * 256 + l)
  end
  if c == 0xcc then
    local x = byte(d, at + 1)
    if not x then return '' end
    return tostring(x)
  end
  if c == 0xce then
    local a1, a2, a3, a4 = byte(d, at + 1, at + 4)
    if not a4 then return '' end
    return string.format('%d', ((a1 * 256 + a2) * 256 + a3) * 256 + a4)
  end
  local size = INT_SIZES[c]
  if not size or #d < at + size then return '' end
  local bytes = {byte(d, at + 1, at + size)}
  local negative = c >= 0xd0 and bytes[1] >= 0x80
  -- Past 2^53 a Lua number is not exact: such an account is known by its bytes
  -- (jobcore/fair.py account_name: -2^53 <= id < 2^53 by its digits).
  local exact = (bytes[1] == 0 and bytes[2] <= 0x1f) or (negative and bytes[1] == 0xff and bytes[2] >= 0xe0)
  if size == 8 and not exact then
    return 'x' .. string.gsub(string.sub(d, at + 1, at + 8), '.', function(ch) return string.format('%02x', byte(ch)) end)
  end
  local v = 0
  for k = 1, size do
    if negative then v = v * 256 + (255 - bytes[k]) else v = v * 256 + bytes[k] end
  end
  if negative then v = -(v + 1) end
  return string.format('%d', v)
end
