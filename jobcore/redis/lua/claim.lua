-- Move in-flight jobs of one type from `owner` to `consumer`.
-- With explicit ids, only those still owned by `owner`; else the oldest `count`,
-- of which at most `suspects` (-1: no limit) that would have lived through
-- `suspect_deaths` worker deaths or more; the ones skipped stay with `owner`.
-- `counted` 1: owner died (each move is a new delivery, so the entry's delivery
-- count is 1 + the deaths it lived through); 0: owner said it was stopping, so
-- the move keeps the delivery count (a stop is not a death, nor an attempt).
-- Removes owner's consumer once it holds nothing (unless owner is consumer).
-- A paused type (its stats hash holds `paused`) moves nothing: recovery waits
-- for resume, as new jobs do.
-- KEYS: stream, stats
-- ARGV: group, consumer, owner, count, suspects, suspect_deaths, counted, ids...
-- Returns {{id, payload or false, attempt, deaths}, ...}, number still held by owner, 1 if paused
local stream, group, me, owner = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local count, suspects, suspect_deaths = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local step = tonumber(ARGV[7])
local paused = 0
if KEYS[2] and redis.call('HEXISTS', KEYS[2], 'paused') == 1 then
  paused, count = 1, 0
end

local ids, counts = {}, {}
if #ARGV > 7 then
  for i = 8, #ARGV do
    if #ids >= count then break end
    local ok, p = pcall(redis.call, 'XPENDING', stream, group, ARGV[i], ARGV[i], 1, owner)
    if ok and #p > 0 then
      ids[#ids + 1] = ARGV[i]
      counts[ARGV[i]] = p[1][4]
    end
  end
elseif count > 0 then
  -- Look past skipped suspects, but only so far: a call stays short.
  local window = count
  if suspects >= 0 then window = count + 1000 end
  local ok, p = pcall(redis.call, 'XPENDING', stream, group, '-', '+', window, owner)
  if not ok then return {{}, 0, paused} end
  for _, row in ipairs(p) do
    if #ids >= count then break end
    local take = true
    if suspects >= 0 and row[4] + step - 1 >= suspect_deaths then
      if suspects > 0 then suspects = suspects - 1 else take = false end
    end
    if take then
      ids[#ids + 1] = row[1]
      counts[row[1]] = row[4]
    end
  end
end
local out = {}
if #ids > 0 then
  local claimed = {}
  if step == 1 then
    claimed = redis.call('XCLAIM', stream, group, me, 0, unpack(ids))
  else
    for _, id in ipairs(ids) do
      local one = redis.call('XCLAIM', stream, group, me, 0, id, 'RETRYCOUNT', counts[id])
      if one[1] then claimed[#claimed + 1] = one[1] end
    end
  end
  for _, e in ipairs(claimed) do
    if e and e[1] then
      local d, base = false, 0
      local f = e[2]
      if f then
        for j = 1, #f, 2 do
          if f[j] == 'd' then d = f[j + 1] elseif f[j] == 'a' then base = tonumber(f[j + 1]) or 0 end
        end
      end
      local n = counts[e[1]] + step
      out[#out + 1] = {e[1], d, base + n, n - 1}
    end
  end
end
local left = 0
local ok, summary = pcall(redis.call, 'XPENDING', stream, group)
if ok and summary[4] then
  for _, row in ipairs(summary[4]) do
    if row[1] == owner then left = tonumber(row[2]) end
  end
end
if left == 0 and owner ~= me then
  pcall(redis.call, 'XGROUP', 'DELCONSUMER', stream, group, owner)
end
return {out, left, paused}
