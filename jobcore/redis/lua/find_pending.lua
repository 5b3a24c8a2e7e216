-- Look for a job id in one stretch of a stream (find): the entries from `start`
-- to `end`, at most `count` of them, compared with the id's 16 bytes on the
-- server so only matches travel. Entries delivered to a worker (in flight) are
-- left out: find lists those from the pending-entries list.
-- KEYS: stream; ARGV: group, start, end, count, id bytes
-- Returns {id of the last entry looked at when there may be more, or false,
--          {{entry id, payload}, ...}}
local stream, group, count, needle = KEYS[1], ARGV[1], tonumber(ARGV[4]), ARGV[5]
local ok, e = pcall(redis.call, 'XRANGE', stream, ARGV[2], ARGV[3], 'COUNT', count)
if not ok then return {false, {}} end
local found = {}
for _, entry in ipairs(e) do
  local f = entry[2]
  for j = 1, #f, 2 do
    if f[j] == 'd' and string.find(f[j + 1], needle, 1, true) then
      local held, p = pcall(redis.call, 'XPENDING', stream, group, entry[1], entry[1], 1)
      if not (held and #p > 0) then found[#found + 1] = {entry[1], f[j + 1]} end
    end
  end
end
local more = false
if #e == count then more = e[#e][1] end
return {more, found}
