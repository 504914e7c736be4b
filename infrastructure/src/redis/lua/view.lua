-- view.lua — a product's state in one atomic read (single Redis): buckets, holds,
-- returns and the suspension, with Redis's clock.
--
-- KEYS[1] {P:pID}:meta  KEYS[2] {P:pID}:res  KEYS[3] {P:pID}:ret
-- KEYS[4..] {P:pID:bN} every bucket, 0..n-1
-- Returns {-1} not loaded; {-2, n} the product has n buckets: ask again;
--         {now_ms, susp_until_ms, {avail...}, {inflight...}, {token, record, ...},
--          {token, ts, ...}}
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
local n = tonumber(redis.call('HGET', KEYS[1], 'buckets'))
if n ~= #KEYS - 3 then return {-2, n} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local avail, inflight = {}, {}
for i = 4, #KEYS do
  avail[#avail + 1] = tonumber(redis.call('HGET', KEYS[i], 'avail') or '0')
  inflight[#inflight + 1] = tonumber(redis.call('HGET', KEYS[i], 'inflight') or '0')
end
return {now, tonumber(redis.call('HGET', KEYS[1], 'susp') or '0'), avail, inflight,
  redis.call('HGETALL', KEYS[2]), redis.call('HGETALL', KEYS[3])}
