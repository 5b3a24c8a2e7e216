-- Move in-flight jobs of one type from `owner` to `consumer` (a new delivery each).
-- With explicit ids, only those still owned by `owner`; else the first `count`.
-- Removes owner's consumer once it holds nothing (unless owner is consumer).
-- KEYS: stream
-- ARGV: group, consumer, owner, count, ids...
-- Returns {{id, payload or false, attempt}, ...}, number still held by owner
local stream, group, me, owner, count = KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local ids, counts = {}, {}
if #ARGV > 4 then
  for i = 5, #ARGV do
    if #ids >= count then break end
    local ok, p = pcall(redis.call, 'XPENDING', stream, group, ARGV[i], ARGV[i], 1, owner)
    if ok and #p > 0 then
      ids[#ids + 1] = ARGV[i]
      counts[ARGV[i]] = p[1][4]
    end
  end
elseif count > 0 then
  local ok, p = pcall(redis.call, 'XPENDING', stream, group, '-', '+', count, owner)
  if not ok then return {{}, 0} end
  for _, row in ipairs(p) do
    ids[#ids + 1] = row[1]
    counts[row[1]] = row[4]
  end
end
local out = {}
if #ids > 0 then
  local claimed = redis.call('XCLAIM', stream, group, me, 0, unpack(ids))
  for _, e in ipairs(claimed) do
    if e and e[1] then
      local d, base = false, 0
      local f = e[2]
      if f then
        for j = 1, #f, 2 do
          if f[j] == 'd' then d = f[j + 1] elseif f[j] == 'a' then base = tonumber(f[j + 1]) or 0 end
        end
      end
      out[#out + 1] = {e[1], d, base + counts[e[1]] + 1}
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
return {out, left}
