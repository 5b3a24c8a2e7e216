-- One lane's fairness as operators see it, in time that grows with the log of
-- the accounts: the settings, how many accounts wait, the top ones by waiting
-- and by running, and the blocked ones (at most `top` of each).
-- KEYS: fair hash, ring, blocked, waiting, running; ARGV: top
-- Returns {settings (flat pairs), accounts waiting, {account, waiting}...,
--          {account, running}..., {{account, waiting, running, limit}} of blocked ones (up to top), how many blocked,
--          jobs in the accounts' queues (a sum over the accounts: an operator's read)}
local top = tonumber(ARGV[1])
local settings = redis.call('HGETALL', KEYS[1])
local nwait = redis.call('ZCARD', KEYS[4])
local waiting = redis.call('ZREVRANGE', KEYS[4], 0, top - 1, 'WITHSCORES')
local running = redis.call('ZREVRANGE', KEYS[5], 0, top - 1, 'WITHSCORES')
local blocked = {}
for _, acct in ipairs(redis.call('SRANDMEMBER', KEYS[3], top)) do
  local cfg = redis.call('HMGET', KEYS[1], 'limit', 'm:' .. acct)
  blocked[#blocked + 1] = {acct, tonumber(redis.call('ZSCORE', KEYS[4], acct) or 0),
                           tonumber(redis.call('ZSCORE', KEYS[5], acct) or 0), tonumber(cfg[2] or cfg[1] or 0)}
end
local queued = 0
local all = redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES')
for j = 2, #all, 2 do queued = queued + tonumber(all[j]) end
return {settings, nwait, waiting, running, blocked, redis.call('SCARD', KEYS[3]), queued}
