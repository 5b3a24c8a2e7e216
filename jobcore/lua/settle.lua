#!lua flags=allow-oom
-- Settle deliveries of one type: ack, fail, dead-letter or release each one,
-- but only while `consumer` still owns it (a stale worker changes nothing).
-- Runs when Redis is full (allow-oom): settling is what frees memory, so acks
-- and deletes come first and the records (counters, failed, dead) after.
-- KEYS: stream, stats, dead, failed
-- ARGV: group, consumer, failed_keep, lowest id, highest id,
--       then (kind, entry_id, attempt, text) repeated
-- A release with attempt 0 hands back a delivery that never started.
-- Returns {the ids not settled: {id, current owner or false (in flight nowhere)},
--          how many failed jobs the cap dropped}.
local stream, stats, dead, failed = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local group, consumer, keep = ARGV[1], ARGV[2], tonumber(ARGV[3])
-- Ownership for the whole batch in one read of this consumer's pending entries.
local held = {}
local ok, p = pcall(redis.call, 'XPENDING', stream, group, ARGV[4], ARGV[5], 1000000000, consumer)
if ok then
  for _, row in ipairs(p) do held[row[1]] = row[4] end
end
local stale, done, records, acked, dropped = {}, {}, {}, 0, 0
for i = 6, #ARGV, 4 do
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
  else
    -- The entry's other fields follow as "o.NAME" (they cannot clash with ours).
    local kept = {}
    for j = 1, #extra, 2 do
      kept[#kept + 1] = 'o.' .. extra[j]
      kept[#kept + 1] = extra[j + 1]
    end
    redis.call('XADD', dead, '*', 'd', raw, 'r', text, 'n', attempt, 'w', consumer, unpack(kept))
  end
end
return {stale, dropped}
