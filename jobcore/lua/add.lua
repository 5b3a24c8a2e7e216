-- Append payloads to one type's stream.
-- KEYS: stream; ARGV: payloads...
for i = 1, #ARGV do
  redis.call('XADD', KEYS[1], '*', 'd', ARGV[i])
end
return #ARGV
