-- reserve.lua — reserve a buyer's quota and stock in one bucket, atomically
-- (single Redis; on a Cluster see reserve_quota.lua + bucket_take.lua).
-- The quota is checked before any stock is touched, so a refused request burns none;
-- a token already reserved answers its earlier reservation (a retried call).
--
-- KEYS[1]  {P:pID}:meta    hash: buckets, susp         (exists = product loaded)
-- KEYS[2]  {P:pID}:quota   hash: user -> units held
-- KEYS[3]  {P:pID}:res     hash: token -> "bucket|qty|ts_ms|user" (in flight)
-- KEYS[4..] {P:pID:bN}     hash: avail, inflight, susp  — in probe order
-- ARGV[1] user  ARGV[2] quantity  ARGV[3] limit  ARGV[4] token  ARGV[5] now (ms)
-- ARGV[6..] the bucket numbers of KEYS[4..] (all of the product's buckets)
--
-- Returns {0, bucket, left}  reserved (left = -1 when not computed)
--         {1}                not loaded (or a bucket key is missing: rebuild)
--         {2}                suspended
--         {3, used}          the limit would be passed
--         {4, left}          no bucket holds enough; left = units in all buckets
--         {5, n}             the product has n buckets now, not #KEYS-3: ask again
local meta, quota, res = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', meta) == 0 then return {1} end
if redis.call('HGET', meta, 'susp') == '1' then return {2} end
local n = tonumber(redis.call('HGET', meta, 'buckets'))
if n ~= #KEYS - 3 then return {5, n} end
local earlier = redis.call('HGET', res, ARGV[4])
if earlier then
  return {0, tonumber(string.match(earlier, '^(%d+)|')), -1}
end
local q = tonumber(ARGV[2])
local used = tonumber(redis.call('HGET', quota, ARGV[1]) or '0')
if used + q > tonumber(ARGV[3]) then return {3, used} end
for i = 4, #KEYS do
  local avail = redis.call('HGET', KEYS[i], 'avail')
  if not avail then
    redis.call('DEL', meta)
    return {1}
  end
  if tonumber(avail) >= q then
    redis.call('HINCRBY', KEYS[i], 'avail', -q)
    redis.call('HINCRBY', KEYS[i], 'inflight', q)
    redis.call('HINCRBY', quota, ARGV[1], q)
    local bucket = ARGV[i + 2]
    redis.call('HSET', res, ARGV[4], bucket .. '|' .. q .. '|' .. ARGV[5] .. '|' .. ARGV[1])
    return {0, tonumber(bucket), -1}
  end
end
local left = 0
for i = 4, #KEYS do
  left = left + tonumber(redis.call('HGET', KEYS[i], 'avail') or '0')
end
return {4, left}
