#!lua flags=allow-oom
-- The consumer group on a lane's stream (the stream created empty if need be),
-- even when Redis is full (OOM, noeviction): see register.lua.
-- KEYS: stream; ARGV: group
-- Returns 1 (created), 0 (it was there), -1 (the key holds something else)
local ok, err = pcall(redis.call, 'XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
if ok then return 1 end
local text = type(err) == 'table' and err.err or tostring(err)
if string.find(text, 'BUSYGROUP', 1, true) then return 0 end
if string.find(text, 'WRONGTYPE', 1, true) then return -1 end
return redis.error_reply(text)
