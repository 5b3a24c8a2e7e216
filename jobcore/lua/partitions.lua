-- Publish declared partition counts, never lowering one (a lower count would
-- strand the jobs of the partitions it drops), and read them back.
-- KEYS: partitions hash; ARGV: type, count, type, count...
-- Returns the count in force for each type, in ARGV order (1: none stored).
local out = {}
for i = 1, #ARGV, 2 do
  local n = tonumber(ARGV[i + 1])
  local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[i])) or 1
  if n > cur then
    redis.call('HSET', KEYS[1], ARGV[i], n)
    cur = n
  end
  out[#out + 1] = cur
end
return out
