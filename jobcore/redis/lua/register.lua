#!lua flags=allow-oom
-- A worker's start-up registration when Redis is full (OOM, noeviction): its
-- types listed and their schemas kept. Allowed under OOM: it adds a few bytes
-- at most, and the worker it lets start is what frees memory (settled jobs).
-- KEYS: types set, schemas hash; ARGV: type, schema json, type, schema json...
for i = 1, #ARGV, 2 do
  redis.call('SADD', KEYS[1], ARGV[i])
  if redis.call('HGET', KEYS[2], ARGV[i]) ~= ARGV[i + 1] then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  end
end
return 1
