-- suspend.lua — a product's suspension lease: take it, renew it or end it. While it
-- is in force (until its expiry, in Redis time) reservations and returns are refused.
--
-- KEYS[1] {P:pID}:meta  hash: susp (suspended until, ms), owner
-- ARGV[1] 'suspend' | 'renew' | 'resume'  ARGV[2] owner token  ARGV[3] ttl (ms)
-- Returns 1 done, 0 refused (not loaded; another owner's lease is in force; for
-- renew and resume: not this owner's).
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local until_ms = tonumber(redis.call('HGET', KEYS[1], 'susp') or '0')
local owner = redis.call('HGET', KEYS[1], 'owner')
if ARGV[1] == 'suspend' then
  if until_ms > now and owner ~= ARGV[2] then return 0 end
elseif owner ~= ARGV[2] then
  return 0
end
if ARGV[1] == 'resume' then
  redis.call('HDEL', KEYS[1], 'susp', 'owner')
else
  redis.call('HSET', KEYS[1], 'susp', now + tonumber(ARGV[3]), 'owner', ARGV[2])
end
return 1
