#!lua flags=allow-oom
-- Delete a stopping worker's consumer from a stream's group, but only while it
-- holds nothing: deleting a consumer drops its pending entries, which would
-- leave those jobs delivered to no one.
-- KEYS: stream; ARGV: group, consumer
-- Returns 1 when it still holds jobs (kept), else 0.
local ok, rows = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if not ok then return 0 end -- no group: it holds nothing here
if #rows > 0 then return 1 end
redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
return 0
