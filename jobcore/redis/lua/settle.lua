#!lua flags=allow-oom
-- Settle deliveries of one type: ack, fail, dead-letter or release each one,
-- but only while `consumer` still owns it (a stale worker changes nothing).
-- Runs when Redis is full (allow-oom): settling is what frees memory, so acks
-- and deletes come first and the records (counters, failed, dead) after.
-- KEYS: stream, stats, dead, failed, history
-- ARGV: group, consumer, failed_keep, lowest id, highest id,
--       the batch's run times ("SUM_MS bucket:count ...", or ""; jobcore/history.py),
--       minutes of history kept, then (kind, entry_id, attempt, text) repeated
-- A release with attempt 0 hands back a delivery that never started.
-- Cancel answers (rare): KEYS[6..] each a cancel's answer key, with (entry id,
-- answer, ttl ms) per key at the very end of ARGV; an answer is written only for
-- an entry this call settles ('moved' for one it does not own), so it is true.
-- Returns {the ids not settled: {id, current owner or false (in flight nowhere)},
--          how many failed jobs the cap dropped}.
local stream, stats, dead, failed, history = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local group, consumer, keep = ARGV[1], ARGV[2], tonumber(ARGV[3])
local runs, keep_minutes = ARGV[6], tonumber(ARGV[7])
-- Ownership for the whole batch in one read of this consumer's pending entries.
local held = {}
local ok, p = pcall(redis.call, 'XPENDING', stream, group, ARGV[4], ARGV[5], 1000000000, consumer)
if ok then
  for _, row in ipairs(p) do held[row[1]] = row[4] end
end
local nv = #KEYS - 5
local answers = {}
for k = 1, nv do
  local at = #ARGV - 3 * (nv - k + 1) + 1
  local id = ARGV[at]
  local found, row = pcall(redis.call, 'XPENDING', stream, group, id, id, 1)
  answers[k] = {KEYS[5 + k], id, ARGV[at + 1], ARGV[at + 2], found and #row > 0 and row[1][2] == consumer}
end
local stale, done, records, acked, dropped, nfailed, ndead = {}, {}, {}, 0, 0, 0, 0
for i = 8, #ARGV - 3 * nv, 4 do
  local kind, id, attempt, text = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3]
  local deliveries = held[id]
  if deliveries == nil then
    local owner = false
    local found, row = pcall(redis.call, 'XPENDING', stream, group, id, id, 1)
    if found and #row > 0 then owner = row[1][2] end
    stale[#stale + 1] = {id, owner}
  else
    held[id] = nil -- the same id twice in a batch settles once
    done[#done + 1] = id
    if kind == 'ack' then
      acked = acked + 1
    else
      -- Every field the entry has is kept as it was (bytes nobody decoded included).
      local raw, stored, extra = '', 0, {}
      local e = redis.call('XRANGE', stream, id, id)
      if #e > 0 then
        local f = e[1][2]
        for j = 1, #f, 2 do
          if f[j] == 'd' then raw = f[j + 1]
          elseif f[j] == 'a' then stored = tonumber(f[j + 1]) or 0
          else extra[#extra + 1] = f[j]; extra[#extra + 1] = f[j + 1] end
        end
      end
      records[#records + 1] = {kind, raw, stored, deliveries, attempt, text, extra}
    end
  end
end
for i = 1, #done, 1000 do
  local last = math.min(i + 999, #done)
  redis.call('XACK', stream, group, unpack(done, i, last))
  redis.call('XDEL', stream, unpack(done, i, last))
end
if acked > 0 then redis.call('HINCRBY', stats, 'processed', acked) end
for _, r in ipairs(records) do
  local kind, raw, stored, deliveries, attempt, text, extra = r[1], r[2], r[3], r[4], r[5], r[6], r[7]
  if kind == 'release' then
    local base = attempt - 1
    -- attempt 0: this delivery never started, so it does not count
    if attempt <= 0 then base = stored + deliveries - 1 end
    if base > 0 then
      redis.call('XADD', stream, '*', 'd', raw, 'a', base, unpack(extra))
    else
      redis.call('XADD', stream, '*', 'd', raw, unpack(extra))
    end
  elseif kind == 'fail' then
    if redis.call('XLEN', failed) >= keep then dropped = dropped + 1 end
    redis.call('XADD', failed, 'MAXLEN', keep, '*', 'd', raw, 'r', text, 'n', attempt, 'w', consumer)
    redis.call('HINCRBY', stats, 'failed', 1)
    nfailed = nfailed + 1
  else
    ndead = ndead + 1
    -- The entry's other fields follow as "o.NAME" (they cannot clash with ours).
    local kept = {}
    for j = 1, #extra, 2 do
      kept[#kept + 1] = 'o.' .. extra[j]
      kept[#kept + 1] = extra[j + 1]
    end
    redis.call('XADD', dead, '*', 'd', raw, 'r', text, 'n', attempt, 'w', consumer, unpack(kept))
  end
end

-- History last, so a full Redis has settled everything above first; in a pcall,
-- so nothing here (a history key holding something else...) fails the settle.
-- One field per minute of Redis time: "processed failed dead run_ms bucket counts...".
local function add_history()
  local minute = math.floor(tonumber(redis.call('TIME')[1]) / 60)
  local field = tostring(minute)
  local cur = redis.call('HGET', history, field)
  local v = {}
  if cur then
    for n in string.gmatch(cur, '%d+') do v[#v + 1] = tonumber(n) end
  end
  for j = #v + 1, 4 do v[j] = 0 end
  v[1], v[2], v[3] = v[1] + acked, v[2] + nfailed, v[3] + ndead
  local first = true
  for part in string.gmatch(runs, '%S+') do
    if first then
      v[4] = v[4] + tonumber(part)
      first = false
    else
      local b, n = string.match(part, '^(%d+):(%d+)$')
      local at = 5 + tonumber(b)
      for j = #v + 1, at do v[j] = 0 end
      v[at] = v[at] + tonumber(n)
    end
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
  local lo, last = tonumber(marks[1]), tonumber(marks[2])
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
for _, a in ipairs(answers) do
  local key, id, answer, ttl, owned = a[1], a[2], a[3], a[4], a[5]
  local found, row = pcall(redis.call, 'XPENDING', stream, group, id, id, 1)
  if not owned then
    redis.call('SET', key, 'moved', 'PX', ttl)
  elseif not (found and #row > 0 and row[1][2] == consumer) then
    redis.call('SET', key, answer, 'PX', ttl)
  end
end
return {stale, dropped}
