-- Delete waiting jobs by entry id (`jobcore pending delete`): each one not in
-- flight right now leaves the stream; one a worker holds is left to run. In the
-- same step as any fetch, so a job is deleted or run, never both, never neither.
-- A fair lane's account lists may keep a deleted id: fetch.lua skips an id whose
-- entry is gone.
-- KEYS: stream; ARGV: group, entry ids...
-- Returns how many were deleted.
local stream, group, n = KEYS[1], ARGV[1], 0
for i = 2, #ARGV do
  local id = ARGV[i]
  local ok, p = pcall(redis.call, 'XPENDING', stream, group, id, id, 1)
  if not (ok and #p > 0) then n = n + redis.call('XDEL', stream, id) end
end
return n
