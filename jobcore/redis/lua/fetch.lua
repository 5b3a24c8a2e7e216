-- Take up to `count` new entries across the lanes, taking turns from `first`:
-- one XREADGROUP with COUNT n would take n from every stream. A lane whose
-- stats hash holds `paused` (Queue.pause) is skipped, in the same step.
-- A fair lane (its fair hash holds `on`; jobcore/fair.py has the rules) first
-- takes in its new entries (read and acknowledged at once: they stay in the
-- stream, out of the pending list, each id in its account's list), then hands
-- out waiting jobs one account at a time, an account at its limit passed over.
-- A job handed out is written again at the stream's end and read from there
-- (so it is in flight as any other: the pending list holds only running jobs),
-- and takes a slot of its account until it is settled (the held hash). Only
-- when nothing new is left unread: else the read would give those first.
-- The rings of a lane no longer fair are still served, so no job is stranded.
-- KEYS per lane (9 each): stream, stats, fair hash, ring, blocked, waiting, running, held, turns
-- ARGV: group, consumer, count, first (1-based)
-- Returns {{{lane index, entries}, ...}, {indexes of paused lanes looked at},
--          {{index, the group's last-delivered id}, ...} of the fair lanes looked at}
local group, consumer, left, first = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local n = #KEYS / 9
local INGEST = 1000 -- entries taken in per lane and call: a call stays short
local out, paused, fair = {}, {}, {}

local function read(who, howmany, stream)
  local r = redis.call('XREADGROUP', 'GROUP', group, who, 'COUNT', howmany, 'STREAMS', stream, '>')
  -- Redis: {{stream, entries}}, or nil when nothing is new. fakeredis (with
  -- redis-py 8) gives {stream, entries}, or an empty list.
  if r and r[1] then
    if type(r[1]) == 'table' then return r[1][2] else return r[2] end
  end
  return nil
end

-- The account of a payload, from the envelope's head (jobcore/model.py: a
-- version byte, then a msgpack array: the id's 16 bytes, the type, the account
-- id), without reading the args. '' when it is not an envelope of ours.
local function account_of(d)
  if not d or #d < 22 or string.byte(d, 1) ~= 1 then return '' end
  local b = string.byte(d, 2)
  if not b or b < 0x90 or b > 0x9f then return '' end
  if string.byte(d, 3) ~= 0xc4 or string.byte(d, 4) ~= 16 then return '' end
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

local function limit_of(config, acct)
  local cfg = redis.call('HMGET', config, 'limit', 'm:' .. acct, 'w:' .. acct)
  return tonumber(cfg[2] or cfg[1] or 0) or 0, tonumber(cfg[3] or 1) or 1
end

local function running_of(running, acct)
  return tonumber(redis.call('ZSCORE', running, acct) or 0) or 0
end

-- An account that has jobs waiting goes in the ring, or in blocked when its
-- slots are all taken.
local function place(config, ring, blocked, running, acct)
  local lim = limit_of(config, acct)
  if lim > 0 and running_of(running, acct) >= lim then
    redis.call('SADD', blocked, acct)
  else
    redis.call('RPUSH', ring, acct)
  end
end

for k = 0, n - 1 do
  if left <= 0 then break end
  local i = (first - 1 + k) % n + 1
  local base = (i - 1) * 9
  local stream, stats = KEYS[base + 1], KEYS[base + 2]
  local config, ring, blocked, waiting = KEYS[base + 3], KEYS[base + 4], KEYS[base + 5], KEYS[base + 6]
  local running, held, turns = KEYS[base + 7], KEYS[base + 8], KEYS[base + 9]
  if redis.call('HEXISTS', stats, 'paused') == 1 then
    paused[#paused + 1] = i
  else
    local taken, caught_up = {}, true
    if redis.call('HEXISTS', config, 'on') == 1 then
      local entries = read(consumer, INGEST, stream) or {}
      local ids = {}
      for _, e in ipairs(entries) do
        local acct = ''
        local f = e[2]
        for j = 1, #f, 2 do
          if f[j] == 'd' then acct = account_of(f[j + 1]); break end
        end
        redis.call('RPUSH', config .. ':q:' .. acct, e[1])
        if tonumber(redis.call('ZINCRBY', waiting, 1, acct)) == 1 then
          place(config, ring, blocked, running, acct)
        end
        ids[#ids + 1] = e[1]
      end
      for j = 1, #ids, 1000 do redis.call('XACK', stream, group, unpack(ids, j, math.min(j + 999, #ids))) end
      caught_up = #entries < INGEST
      fair[#fair + 1] = i
    else
      local entries = read(consumer, left, stream)
      if entries then
        for _, e in ipairs(entries) do taken[#taken + 1] = e end
        left = left - #entries
      end
    end
    -- Hand out waiting jobs in turn: each pass over the ring looks at every
    -- account at most once more than it hands out, so a call stays short.
    local looks = left + redis.call('LLEN', ring)
    local handed = 0
    while caught_up and left > 0 and looks > 0 do
      looks = looks - 1
      local acct = redis.call('LPOP', ring)
      if not acct then break end
      local lim, weight = limit_of(config, acct)
      local run = running_of(running, acct)
      if lim > 0 and run >= lim then
        redis.call('SADD', blocked, acct)
      else
        local id = redis.call('LPOP', config .. ':q:' .. acct)
        local more = 0
        if id then
          more = tonumber(redis.call('ZINCRBY', waiting, -1, acct))
          -- The entry may be gone (deleted, trimmed): then it is skipped.
          local e = redis.call('XRANGE', stream, id, id)
          if e[1] then
            local new = redis.call('XADD', stream, '*', unpack(e[1][2]))
            redis.call('XDEL', stream, id)
            redis.call('HSET', held, new, acct)
            redis.call('ZINCRBY', running, 1, acct)
            run = run + 1
            left = left - 1
            handed = handed + 1
          end
        end
        if more > 0 then
          if lim > 0 and run >= lim then
            redis.call('HDEL', turns, acct)
            redis.call('SADD', blocked, acct)
          elseif weight > 1 and tonumber(redis.call('HINCRBY', turns, acct, 1)) < weight then
            redis.call('LPUSH', ring, acct) -- its next turn of `weight` in a row
          else
            redis.call('HDEL', turns, acct)
            redis.call('RPUSH', ring, acct)
          end
        else
          redis.call('ZREM', waiting, acct)
          redis.call('HDEL', turns, acct)
        end
      end
    end
    if handed > 0 then
      for _, e in ipairs(read(consumer, handed, stream) or {}) do taken[#taken + 1] = e end
    end
    if #taken > 0 then out[#out + 1] = {i, taken} end
    if fair[#fair] == i then
      -- Where a wait for this lane's next new entry reads from (jobcore/redis/fetching.py).
      local at = false
      for _, g in ipairs(redis.call('XINFO', 'GROUPS', stream)) do
        local name, lastid
        for j = 1, #g, 2 do
          if g[j] == 'name' then name = g[j + 1] elseif g[j] == 'last-delivered-id' then lastid = g[j + 1] end
        end
        if name == group then at = lastid end
      end
      fair[#fair] = {i, at}
    end
  end
end
return {out, paused, fair}
