-- Grow types' partitions, never shrinking them (the jobs of a dropped
-- partition would wait for nobody). A type's value is its lane names, one a
-- line, partition 0 first; the stored names are kept and the proposed ones
-- past them appended, so concurrent declarers agree on every name.
-- KEYS: partitions hash; ARGV: type, proposed lanes, type, proposed lanes...
-- Returns each type's stored lanes after the change, in ARGV order.
local out = {}
for i = 1, #ARGV, 2 do
  local have, want = {}, {}
  for name in string.gmatch(redis.call('HGET', KEYS[1], ARGV[i]) or '', '[^\n]+') do have[#have + 1] = name end
  for name in string.gmatch(ARGV[i + 1], '[^\n]+') do want[#want + 1] = name end
  if #want > #have then
    for j = #have + 1, #want do have[#have + 1] = want[j] end
    redis.call('HSET', KEYS[1], ARGV[i], table.concat(have, '\n'))
  end
  out[#out + 1] = table.concat(have, '\n')
end
return out
