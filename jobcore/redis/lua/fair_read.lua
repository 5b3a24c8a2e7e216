-- One lane's fairness as operators see it, in time that grows with the log of
-- the accounts: the settings, how many accounts wait, the top ones by waiting
-- and by running, and the blocked ones (at most `top` of each; with 0 the
-- settings and counts alone, no list and no sum).
-- KEYS: fair hash, ring, blocked, waiting, running; ARGV: top
-- Returns {settings (flat pairs), accounts waiting, {account, waiting}...,
--          {account, running}..., {{account, waiting, running, limit}} of blocked ones (up to top), how many blocked,
--          jobs in the accounts' queues (a sum over the accounts: an operator's read)}
local top = tonumber(ARGV[1])
local settings = redis.call('HGETALL', KEYS[1])
local nwait = redis.call('ZCARD', KEYS[4])
if top <= 0 then return {settings, nwait, {}, {}, {}, redis.call('SCARD', KEYS[3]), 0} end
local waiting = redis.call('ZREVRANGE', KEYS[4], 0, top - 1, 'WITHSCORES')
local running = redis.call('ZREVRANGE', KEYS[5], 0, top - 1, 'WITHSCORES')
local blocked = {}
for _, acct in ipairs(redis.call('SRANDMEMBER', KEYS[3], top)) do
  blocked[#blocked + 1] = {acct, fair_running(KEYS[4], acct), fair_running(KEYS[5], acct), (fair_limit(KEYS[1], acct))}
end
local queued = 0
local all = redis.call('ZRANGE', KEYS[4], 0, -1, 'WITHSCORES')
for j = 2, #all, 2 do queued = queued + tonumber(all[j]) end
return {settings, nwait, waiting, running, blocked, redis.call('SCARD', KEYS[3]), queued}
