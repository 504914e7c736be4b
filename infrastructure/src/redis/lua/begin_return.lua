-- begin_return.lua — announce a return of units (cancel, expiry, stock change) so a
-- re-lay waits for it and a consistency check can see it, unless the product is
-- suspended.
--
-- KEYS[1] {P:pID}:meta   KEYS[2] {P:pID}:ret  hash: token -> ts_ms
-- ARGV[1] token
-- Returns 1 announced, 0 not loaded (nothing to return to), -1 suspended.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(redis.call('HGET', KEYS[1], 'susp') or '0') > now then return -1 end
redis.call('HSET', KEYS[2], ARGV[1], now)
return 1
