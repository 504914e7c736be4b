-- begin_return.lua — announce a return of units (cancel, expiry, stock change) so a
-- reload waits for it, unless the product is suspended.
--
-- KEYS[1] {P:pID}:meta   KEYS[2] {P:pID}:ret  hash: token -> ts_ms
-- ARGV[1] token  ARGV[2] now (ms)
-- Returns 1 announced, 0 not loaded (nothing to return to), -1 suspended.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'susp') == '1' then return -1 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
return 1
