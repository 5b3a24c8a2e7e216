-- Record a type's lanes in its own slot, never dropping one (a dropped lane
-- would strand its jobs): the stored names are kept, the proposed ones past
-- them appended, so concurrent declarers agree on every name. Always written
-- (SET), so a WAIT after it confirms the record whoever stored it first.
-- KEYS: the type's lanes string, partition 0's stats hash; ARGV: proposed lanes, one a line
-- Returns {stored lanes after the change, 1 if the type is paused (new lanes inherit it)}
local have, want = {}, {}
for name in string.gmatch(redis.call('GET', KEYS[1]) or '', '[^\n]+') do have[#have + 1] = name end
for name in string.gmatch(ARGV[1], '[^\n]+') do want[#want + 1] = name end
for j = #have + 1, #want do have[#have + 1] = want[j] end
local stored = table.concat(have, '\n')
redis.call('SET', KEYS[1], stored)
return {stored, redis.call('HEXISTS', KEYS[2], 'paused')}
