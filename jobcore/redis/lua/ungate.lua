-- Open a type's new lanes: drop its gate unless a later raise moved the fence.
-- KEYS: the type's gate hash; ARGV: the fence its old lanes were seen to drain
if redis.call('HGET', KEYS[1], 'fence') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
