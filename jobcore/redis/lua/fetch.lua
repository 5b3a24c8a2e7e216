-- Take up to `count` new entries across the lanes, taking turns from `first`:
-- one XREADGROUP with COUNT n would take n from every stream. A lane whose
-- stats hash holds `paused` (Queue.pause) is skipped, in the same step.
-- A fair lane (its fair hash holds `on`; jobcore/fair.py has the rules) first
-- takes in its new entries (read with NOACK: they stay in the stream, out of
-- the pending list, each id in its account's list), then hands out waiting
-- jobs one account at a time, an account at its limit passed over. The jobs
-- handed out are claimed by id (one XCLAIM ... FORCE: in flight as any other,
-- the pending list holds only running jobs) and, while a limit is set, each
-- takes a slot of its account until it is settled (the held hash). Only when nothing new is left
-- unread: else the read would give those first.
-- The rings of a lane no longer fair are still served, so no job is stranded.
-- KEYS per lane (9 each): stream, stats, fair hash, ring, blocked, waiting, running, held, wake
-- ARGV: group, consumer, count, first (1-based)
-- Returns {{{lane index, entries}, ...}, {indexes of paused lanes looked at},
--          {{index, the group's last-delivered id, the wake stream's last id}, ...} of the fair lanes looked at}
local group, consumer, left, first = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local n = #KEYS / 9
local INGEST = 1000 -- entries taken in per lane and call: a call stays short
local out, paused, fair = {}, {}, {}

local function read(howmany, stream, noack)
  local r
  if noack then
    r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', howmany, 'NOACK', 'STREAMS', stream, '>')
  else
    r = redis.call('XREADGROUP', 'GROUP', group, consumer, 'COUNT', howmany, 'STREAMS', stream, '>')
  end
  -- Redis: {{stream, entries}}, or nil when nothing is new. fakeredis (with
  -- redis-py 8) gives {stream, entries}, or an empty list.
  if r and r[1] then
    if type(r[1]) == 'table' then return r[1][2] else return r[2] end
  end
  return nil
end

-- Push `items` on a list, a thousand at a time (Lua unpacks only so many); the list's length.
local function push(cmd, key, items)
  local n = 0
  for j = 1, #items, 1000 do n = redis.call(cmd, key, unpack(items, j, math.min(j + 999, #items))) end
  return n
end

for k = 0, n - 1 do
  if left <= 0 then break end
  local i = (first - 1 + k) % n + 1
  local base = (i - 1) * 9
  local stream, stats = KEYS[base + 1], KEYS[base + 2]
  local config, ring, blocked, waiting = KEYS[base + 3], KEYS[base + 4], KEYS[base + 5], KEYS[base + 6]
  local running, held, wake = KEYS[base + 7], KEYS[base + 8], KEYS[base + 9]
  if redis.call('HEXISTS', stats, 'paused') == 1 then
    paused[#paused + 1] = i
  else
    local taken, caught_up, at = {}, true, false
    -- One read of the flags; a type never fair has no fair hash (fair_set.lua keeps `v` in it).
    local flags = redis.call('HMGET', config, 'v', 'on', 'lim', 'wt')
    local ever_fair, is_fair = flags[1] ~= false, flags[2] ~= false
    local limited, rules = flags[3] ~= false, flags[3] ~= false or flags[4] ~= false
    local ringlen = ever_fair and redis.call('LLEN', ring) or 0
    local entries = nil
    if is_fair and not limited and ringlen == 0 then
      -- Nobody waits a turn and no limit counts: when all that is new fits this
      -- fetch, it all starts now and turns change nothing, so it is taken as is.
      entries = read(left + 1, stream) or {}
      if #entries <= left then
        for _, e in ipairs(entries) do taken[#taken + 1] = e end
        left = left - #entries
        if #entries > 0 then at = entries[#entries][1] end
        is_fair, entries = 'direct', nil
      else
        -- One too many: these wait their turn like the rest, out of the pending list.
        local ids = {}
        for _, e in ipairs(entries) do ids[#ids + 1] = e[1] end
        redis.call('XACK', stream, group, unpack(ids))
      end
    end
    if is_fair == true then
      local more = read(INGEST, stream, true) or {}
      caught_up = #more < INGEST
      if entries == nil then
        entries = more
      else
        for _, e in ipairs(more) do entries[#entries + 1] = e end
      end
      -- By account, in order: one RPUSH per account and call.
      local by, order = {}, {}
      for _, e in ipairs(entries) do
        local acct = ''
        local f = e[2]
        for j = 1, #f, 2 do
          if f[j] == 'd' then acct = account_of(f[j + 1]); break end
        end
        if not by[acct] then by[acct] = {}; order[#order + 1] = acct end
        local mine = by[acct]
        mine[#mine + 1] = e[1]
        at = e[1]
      end
      local placed = {}
      for _, acct in ipairs(order) do
        local mine = by[acct]
        local len = push('RPUSH', config .. ':q:' .. acct, mine)
        -- A queue that was empty: the account takes a place, unless it still has one.
        if len == #mine and redis.call('SADD', waiting, acct) == 1 then
          if not limited then
            placed[#placed + 1] = acct
          elseif fair_place(config, ring, blocked, running, acct, limited) then
            ringlen = ringlen + 1
          end
        end
      end
      if #placed > 0 then ringlen = push('RPUSH', ring, placed) end
    elseif is_fair ~= 'direct' then
      local got = read(left, stream)
      if got then
        for _, e in ipairs(got) do taken[#taken + 1] = e end
        left = left - #got
      end
    end
    -- Hand out waiting jobs in turn, an account's turn giving it `weight` jobs
    -- (1 unless set), or as many as asked when no other account is ready: in
    -- passes, each taking as many accounts off the ring's head as jobs are
    -- still asked for and putting those served back at its tail, in order. An
    -- account whose queue turns out empty leaves the ring then (an account
    -- served its last job keeps its place until that turn: no look per job).
    local claim, owner = {}, {}
    local passes = left + 1
    while is_fair ~= 'direct' and caught_up and left > 0 and ringlen > 0 and passes > 0 do
      passes = passes - 1
      local accts = redis.call('LPOP', ring, math.min(left, ringlen))
      if type(accts) ~= 'table' then break end
      ringlen = ringlen - #accts
      local back, front, rest = {}, nil, nil
      for idx, acct in ipairs(accts) do
        if left <= 0 then rest = idx; break end
        local lim, weight, used, run = 0, 1, 0, 0
        if rules then lim, weight, used = fair_limit(config, acct) end
        if lim > 0 then run = fair_running(running, acct) end
        local room = left
        if lim > 0 then room = math.min(room, lim - run) end
        if room <= 0 then
          if used > 0 then redis.call('HDEL', config, 't:' .. acct) end
          redis.call('SADD', blocked, acct)
        else
          local alone = #accts == 1 and ringlen == 0
          if not alone then room = math.min(room, math.max(1, weight - used)) end
          local ids = redis.call('LPOP', config .. ':q:' .. acct, room)
          if type(ids) ~= 'table' then ids = {} end
          local got = #ids
          for _, id in ipairs(ids) do
            claim[#claim + 1] = id
            owner[id] = acct
          end
          if got > 0 then
            left = left - got
            if lim > 0 then
              redis.call('ZINCRBY', running, got, acct)
              run = run + got
            end
          end
          used = used + got
          local empty = got < room -- its queue is empty for sure
          local turn_left = weight > 1 and not alone and not empty and used < weight and not (lim > 0 and run >= lim)
          if turn_left then
            redis.call('HSET', config, 't:' .. acct, used)
          elseif used > got then
            redis.call('HDEL', config, 't:' .. acct)
          end
          if empty then
            redis.call('SREM', waiting, acct)
          elseif lim > 0 and run >= lim then
            redis.call('SADD', blocked, acct)
          elseif turn_left then
            front = acct -- the rest of its turn comes next
          else
            back[#back + 1] = acct
          end
        end
      end
      -- The ring again: a turn in progress first, then who was not reached (in
      -- order), then after the rest of the ring who was served, in order.
      if rest then
        local ahead = {}
        for idx = #accts, rest, -1 do ahead[#ahead + 1] = accts[idx] end
        ringlen = push('LPUSH', ring, ahead)
      end
      if front then
        redis.call('LPUSH', ring, front)
        ringlen = ringlen + 1
      end
      if #back > 0 then ringlen = push('RPUSH', ring, back) end
    end
    if #claim > 0 then
      -- In flight as a first delivery; an entry gone from the stream (deleted,
      -- trimmed) is not claimed, and gives its slot back.
      local pairs_held, claimed = {}, {}
      for j = 1, #claim, 1000 do
        local args = {stream, group, consumer, 0}
        for k = j, math.min(j + 999, #claim) do args[#args + 1] = claim[k] end
        args[#args + 1] = 'RETRYCOUNT'
        args[#args + 1] = 1
        args[#args + 1] = 'FORCE'
        for _, e in ipairs(redis.call('XCLAIM', unpack(args))) do
          if e and e[1] and owner[e[1]] then claimed[e[1]] = e end
        end
      end
      -- In turn order (as asked; not every server answers in that order).
      for _, id in ipairs(claim) do
        local e = claimed[id]
        if e then
          taken[#taken + 1] = e
          if limited then -- a slot to give back at settle; without a limit nothing counts them
            pairs_held[#pairs_held + 1] = id
            pairs_held[#pairs_held + 1] = owner[id]
          end
        else
          if limited then fair_free(config, ring, blocked, running, owner[id], 1, true) end
        end
      end
      for j = 1, #pairs_held, 1000 do redis.call('HSET', held, unpack(pairs_held, j, math.min(j + 999, #pairs_held))) end
    end
    if #taken > 0 then out[#out + 1] = {i, taken} end
    if is_fair then
      if not at then
        -- Nothing read: where the group stands (others may have read since), so
        -- a wait for this lane's next new entry (jobcore/redis/fetching.py) blocks.
        local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', stream)
        for _, g in ipairs(ok and groups or {}) do
          local name, lastid
          for j = 1, #g, 2 do
            if g[j] == 'name' then name = g[j + 1] elseif g[j] == 'last-delivered-id' then lastid = g[j + 1] end
          end
          if name == group then at = lastid end
        end
      end
      -- Where the wake stream stands: a worker that waits wakes on its next entry too.
      local woke = '$'
      if #taken == 0 and limited then
        local last = redis.call('XREVRANGE', wake, '+', '-', 'COUNT', 1)
        woke = last[1] and last[1][1] or '0-0'
      end
      fair[#fair + 1] = {i, at, woke}
    end
  end
end
return {out, paused, fair}
