-- Record a type's lanes in its own slot, never dropping one (a dropped lane
-- would strand its jobs): the stored names are kept, the proposed ones past
-- them appended, so concurrent declarers agree on every name. Always written
-- (SET), so a WAIT after it confirms the record whoever stored it first.
-- A raise from `before` lanes (> 0) closes the new ones (the gate hash: from,
-- fence ms) until the old lanes have run every job added up to the fence, so
-- an account's new jobs never run ahead of its older ones (FIFO per account).
-- KEYS: the type's lanes string, partition 0's stats hash, the type's gate hash
-- ARGV: proposed lanes (one a line), lanes before (0: no raise), fence delay ms
-- Returns {stored lanes after the change, 1 if the type is paused (new lanes inherit it)}
local have, want = {}, {}
for name in string.gmatch(redis.call('GET', KEYS[1]) or '', '[^\n]+') do have[#have + 1] = name end
for name in string.gmatch(ARGV[1], '[^\n]+') do want[#want + 1] = name end
for j = #have + 1, #want do have[#have + 1] = want[j] end
local stored = table.concat(have, '\n')
redis.call('SET', KEYS[1], stored)
local before = tonumber(ARGV[2])
if before > 0 and #have > before then
  local t = redis.call('TIME')
  local fence = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[3])
  local from = tonumber(redis.call('HGET', KEYS[3], 'from') or before)
  local old = tonumber(redis.call('HGET', KEYS[3], 'fence') or 0)
  redis.call('HSET', KEYS[3], 'from', math.min(from, before), 'fence', math.max(fence, old))
end
return {stored, redis.call('HEXISTS', KEYS[2], 'paused')}
