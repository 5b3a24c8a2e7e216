#!lua
-- Append payloads to one type's stream, all or none: with a "#!lua" line,
-- a full Redis refuses the script before it starts, never halfway through.
-- KEYS: stream; ARGV: payloads...
for i = 1, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'd', ARGV[i])
end
return #ARGV
