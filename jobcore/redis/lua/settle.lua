#!lua flags=allow-oom
-- Settle deliveries of one type: ack, fail, dead-letter or release each one,
-- but only while `consumer` still owns it (a stale worker changes nothing).
-- All or nothing per job: its record (failed, dead, queued again) is written
-- first and the job leaves the stream only when that write succeeded; a job
-- whose record cannot be written (a dead key holding a string...) stays in
-- flight with this consumer and is returned with why. Counters that are not
-- numbers are reset and said, never fatal. Runs when Redis is full (allow-oom
-- lets every write through, so the order above costs nothing then).
-- A job a fair lane handed out (in its held hash) gives its account's slot
-- back when it leaves the stream here; an account waiting for that slot goes
-- back in the ring.
-- KEYS: stream, stats, dead, failed, history, then the lane's fair keys (7:
--       fair hash, ring, blocked, waiting, running, held, wake)
-- ARGV: group, consumer, failed_keep, lowest id, highest id,
--       the batch's run times ("SUM_MS MAX_US bucket:count ... fBUCKET:count ...", or "";
--       jobcore/ops/history.py),
--       minutes of history kept, then (kind, entry_id, attempt, text) repeated
-- A release with attempt 0 hands back a delivery that never started.
-- Cancel answers (rare): KEYS[13..] each a cancel's answer key, with (entry id,
-- answer, ttl ms) per key at the very end of ARGV; an answer is written only for
-- an entry this call settles ('moved' for one it does not own), so it is true.
-- Returns {the ids not settled: {id, current owner or false (in flight nowhere)},
--          how many failed jobs the cap dropped,
--          the ids kept in flight: {id, why}, warnings (text)}.
local stream, stats, dead, failed, history = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group, consumer, keep = ARGV[1], ARGV[2], tonumber(ARGV[3])
local runs, keep_minutes = ARGV[6], tonumber(ARGV[7])
-- Other fields copied per entry: Lua unpacks fewer than 8000 values in one call.
local MAX_OTHER = 1000
local notes = {}
local function err_text(r)
  if type(r) == 'table' and r.err then return r.err end
  return nil
end
-- Ownership for the whole batch in one read of this consumer's pending entries.
local held = {}
local ok, p = pcall(redis.call, 'XPENDING', stream, group, ARGV[4], ARGV[5], 1000000000, consumer)
if ok then
  for _, row in ipairs(p) do held[row[1]] = row[4] end
end
-- A key that is not a stream takes no record (its jobs stay in flight).
local function wrong_type(key)
  local t = redis.call('TYPE', key)
  t = t.ok or t
  if t == 'stream' or t == 'none' then return nil end
  return 'WRONGTYPE ' .. key .. ' holds a ' .. t .. ', not a stream'
end
local target_problem = {fail = wrong_type(failed), dead = wrong_type(dead)}
local FAIR = 5 -- KEYS[FAIR + 1..FAIR + 7]: the fair keys
local nv = #KEYS - 12
local answers = {}
for k = 1, nv do
  local at = #ARGV - 3 * (nv - k + 1) + 1
  local id = ARGV[at]
  local found, row = pcall(redis.call, 'XPENDING', stream, group, id, id, 1)
  answers[k] = {KEYS[12 + k], id, ARGV[at + 1], ARGV[at + 2], found and #row > 0 and row[1][2] == consumer}
end
local stale, done, refused, acked, dropped, nfailed, ndead = {}, {}, {}, 0, 0, 0, 0
local cut = 0
for i = 8, #ARGV - 3 * nv, 4 do
  local kind, id, attempt, text = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local deliveries = held[id]
  if deliveries == nil then
    local owner = false
    local found, row = pcall(redis.call, 'XPENDING', stream, group, id, id, 1)
    if found and #row > 0 then owner = row[1][2] end
    stale[#stale + 1] = {id, owner}
  elseif target_problem[kind] then
    held[id] = nil
    refused[#refused + 1] = {id, target_problem[kind]}
  else
    held[id] = nil -- the same id twice in a batch settles once
    local r = 1
    if kind ~= 'ack' then
      -- Every field the entry has is kept as it was (bytes nobody decoded included),
      -- up to MAX_OTHER other fields.
      local raw, stored, extra, more = '', 0, {}, 0
      local e = redis.call('XRANGE', stream, id, id)
      if #e > 0 then
        local f = e[1][2]
        for j = 1, #f, 2 do
          if f[j] == 'd' then raw = f[j + 1]
          elseif f[j] == 'a' then stored = tonumber(f[j + 1]) or 0
          elseif #extra < 2 * MAX_OTHER then extra[#extra + 1] = f[j]; extra[#extra + 1] = f[j + 1]
          else more = more + 1 end
        end
      end
      if more > 0 then cut = cut + 1 end
      if kind == 'release' then
        local base = attempt - 1
        -- attempt 0: this delivery never started, so it does not count
        if attempt <= 0 then base = stored + deliveries - 1 end
        if base > 0 then
          r = redis.pcall('XADD', stream, '*', 'd', raw, 'a', base, unpack(extra))
        else
          r = redis.pcall('XADD', stream, '*', 'd', raw, unpack(extra))
        end
      elseif kind == 'fail' then
        local n = redis.pcall('XLEN', failed)
        r = redis.pcall('XADD', failed, 'MAXLEN', keep, '*', 'd', raw, 'r', text, 'n', attempt, 'w', consumer)
        if not err_text(r) then
          if type(n) == 'number' and n >= keep then dropped = dropped + 1 end
          nfailed = nfailed + 1
        end
      else
        -- The entry's other fields follow as "o.NAME" (they cannot clash with ours).
        local kept = {}
        for j = 1, #extra, 2 do
          kept[#kept + 1] = 'o.' .. extra[j]
          kept[#kept + 1] = extra[j + 1]
        end
        if more > 0 then
          kept[#kept + 1] = 'o.(not kept)'
          kept[#kept + 1] = more .. ' more fields not kept'
        end
        r = redis.pcall('XADD', dead, '*', 'd', raw, 'r', text, 'n', attempt, 'w', consumer, unpack(kept))
        if not err_text(r) then ndead = ndead + 1 end
      end
    else
      acked = acked + 1
    end
    if err_text(r) then
      refused[#refused + 1] = {id, err_text(r)}
    else
      done[#done + 1] = id
    end
  end
end
-- Only now do the filed jobs leave the stream.
for i = 1, #done, 1000 do
  local last = math.min(i + 999, #done)
  redis.call('XACK', stream, group, unpack(done, i, last))
  redis.call('XDEL', stream, unpack(done, i, last))
end
if #done > 0 and redis.call('EXISTS', KEYS[FAIR + 6]) == 1 then
  local config, ring, blocked, running, held = KEYS[FAIR + 1], KEYS[FAIR + 2], KEYS[FAIR + 3], KEYS[FAIR + 5], KEYS[FAIR + 6]
  if redis.call('HEXISTS', config, 'lim') == 0 then
    -- Slots are counted only while a limit is set (fair_set.lua counts them from held when one is).
    for i = 1, #done, 1000 do redis.call('HDEL', held, unpack(done, i, math.min(i + 999, #done))) end
  else
    local freed, order, mine = {}, {}, {}
    for i = 1, #done, 1000 do
      local ids = {unpack(done, i, math.min(i + 999, #done))}
      local accts = redis.call('HMGET', held, unpack(ids))
      for j, acct in ipairs(accts) do
        if acct then
          mine[#mine + 1] = ids[j]
          if not freed[acct] then freed[acct] = 0; order[#order + 1] = acct end
          freed[acct] = freed[acct] + 1
        end
      end
    end
    for i = 1, #mine, 1000 do redis.call('HDEL', held, unpack(mine, i, math.min(i + 999, #mine))) end
    for _, acct in ipairs(order) do fair_free(config, ring, blocked, running, acct, freed[acct], true) end
  end
end
if cut > 0 then
  notes[#notes + 1] = cut .. ' job(s) had more than ' .. MAX_OTHER .. ' other fields: only the first ' ..
    MAX_OTHER .. ' were kept'
end
-- A counter that cannot be added to (not a number, or it would overflow) starts again.
local function count(field, n)
  if n == 0 then return end
  local r = redis.pcall('HINCRBY', stats, field, n)
  if not err_text(r) then return end
  local was = redis.pcall('HGET', stats, field)
  if type(was) == 'string' and #was > 40 then was = string.sub(was, 1, 40) .. '...' end
  local reset = redis.pcall('HSET', stats, field, n)
  if err_text(reset) then
    notes[#notes + 1] = 'the counters of ' .. stats .. ' are not kept (' .. err_text(reset) .. ')'
  else
    notes[#notes + 1] = 'the ' .. field .. ' counter of ' .. stats .. ' was ' .. string.format('%q', tostring(was)) ..
      ', not a number it can add to (' .. err_text(r) .. '): reset to ' .. n
  end
end
count('processed', acked)
count('failed', nfailed)
count('failures', nfailed)  -- every failed run; requeue and purge lower only 'failed'

-- History last, so a full Redis has settled everything above first; in a pcall,
-- so nothing here (a history key holding something else...) fails the settle.
-- One field per minute of Redis time: "processed failed dead run_ms", 17 coarse bucket
-- counts, the longest run (µs), then fine "bucket count" pairs (jobcore/ops/history.py).
local function add_history()
  local minute = math.floor(tonumber(redis.call('TIME')[1]) / 60)
  local field = tostring(minute)
  local cur = redis.call('HGET', history, field)
  local v = {}
  if cur then
    for n in string.gmatch(cur, '%S+') do
      -- A value that is not ours (not digits, or past what a double holds exactly) starts the minute again.
      if not string.match(n, '^%d+$') or #n > 15 then
        notes[#notes + 1] = 'the history of ' .. history .. ' held a value that is not a count: minute reset'
        v = {}
        break
      end
      v[#v + 1] = tonumber(n)
    end
  end
  for j = #v + 1, 4 do v[j] = 0 end
  v[1], v[2], v[3] = v[1] + acked, v[2] + nfailed, v[3] + ndead
  if runs ~= '' then
    -- "SUM_MS MAX_US i:n ... fj:n ...": coarse counts at 5..21 (what older workers
    -- write too), the longest run at 22, then sparse "index count" fine pairs.
    local parts = {}
    for part in string.gmatch(runs, '%S+') do parts[#parts + 1] = part end
    v[4] = v[4] + tonumber(parts[1])
    for j = #v + 1, 22 do v[j] = 0 end
    v[22] = math.max(v[22], tonumber(parts[2]))
    local fine, order = {}, {}
    local function add_fine(j, n)
      if fine[j] == nil then fine[j] = 0; order[#order + 1] = j end
      fine[j] = fine[j] + n
    end
    for j = 23, #v - 1, 2 do add_fine(v[j], v[j + 1]) end
    for k = 3, #parts do
      local f, b, n = string.match(parts[k], '^(f?)(%d+):(%d+)$')
      if f == 'f' then
        add_fine(tonumber(b), tonumber(n))
      else
        local at = 5 + tonumber(b)
        v[at] = v[at] + tonumber(n)
      end
    end
    for j = #v, 23, -1 do v[j] = nil end
    table.sort(order)
    for _, j in ipairs(order) do v[#v + 1] = j; v[#v + 1] = fine[j] end
  end
  while #v > 4 and v[#v] == 0 do v[#v] = nil end -- short values: a small hash stays compact
  local value = table.concat(v, ' ')
  if cur then
    redis.call('HSET', history, field, value)
    return
  end
  -- A new minute: drop those older than keep_minutes. Fields exist only from
  -- lo to last, and lo is never older than keep_minutes before last, so this
  -- deletes at most keep_minutes fields (each minute once).
  local marks = redis.call('HMGET', history, 'lo', 'last')
  local lo, last = marks[1], marks[2]
  lo = lo and string.match(lo, '^%d+$') and #lo <= 15 and tonumber(lo) or nil
  last = last and string.match(last, '^%d+$') and #last <= 15 and tonumber(last) or nil
  local from = minute - keep_minutes + 1
  if lo == nil or last == nil or last < from then
    redis.call('DEL', history)
    lo, last = minute, minute
  elseif lo < from then
    local old = {}
    for m = math.max(lo, from - keep_minutes), from - 1 do old[#old + 1] = tostring(m) end
    for j = 1, #old, 1000 do redis.call('HDEL', history, unpack(old, j, math.min(j + 999, #old))) end
    lo = from
  end
  redis.call('HSET', history, field, value, 'lo', math.min(lo, minute), 'last', math.max(last, minute))
end
if acked + nfailed + ndead > 0 or runs ~= '' then pcall(add_history) end
-- A job kept in flight (its record refused) is still this consumer's: no answer yet.
for _, a in ipairs(answers) do
  local key, id, answer, ttl, owned = a[1], a[2], a[3], a[4], a[5]
  local found, row = pcall(redis.call, 'XPENDING', stream, group, id, id, 1)
  if not owned then
    redis.call('SET', key, 'moved', 'PX', ttl)
  elseif not (found and #row > 0 and row[1][2] == consumer) then
    redis.call('SET', key, answer, 'PX', ttl)
  end
end
return {stale, dropped, refused, notes}
