#!lua
-- Append payloads to one type's stream, all or none: with a "#!lua" line,
-- a full Redis refuses the script before it starts, never halfway through.
-- KEYS: stream; ARGV: payloads...
-- Returns how many were added, negative when this call created the stream (a
-- new lane, or Redis lost its data: the caller lists the type again).
local created = redis.call('EXISTS', KEYS[1]) == 0
for i = 1, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'd', ARGV[i])
end
if created then return -#ARGV end
return #ARGV
