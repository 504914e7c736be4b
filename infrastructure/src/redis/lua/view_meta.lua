-- view_meta.lua — Redis Cluster: the product-slot part of a view in one read: the
-- bucket count, the suspension, the holds and the returns, with Redis's clock.
--
-- KEYS[1] {P:pID}:meta  KEYS[2] {P:pID}:res  KEYS[3] {P:pID}:ret
-- Returns {-1} not loaded; {now_ms, susp_until_ms, n, {token, record, ...},
-- {token, ts, ...}}
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return {now, tonumber(redis.call('HGET', KEYS[1], 'susp') or '0'),
  tonumber(redis.call('HGET', KEYS[1], 'buckets')),
  redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])}
