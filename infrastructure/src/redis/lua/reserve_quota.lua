-- reserve_quota.lua — Redis Cluster, step 1 of a reservation: the buyer's quota, in
-- the product's slot. Step 2 takes the units from a bucket (bucket_take.lua, another
-- slot); if no bucket can, unreserve_quota.lua gives the quota back. A crash between
-- the steps leaves a record that reconcile clears.
--
-- KEYS[1] {P:pID}:meta  KEYS[2] {P:pID}:quota  KEYS[3] {P:pID}:res
-- ARGV[1] user  ARGV[2] quantity  ARGV[3] limit  ARGV[4] token  ARGV[5] now (ms)
-- ARGV[6] the bucket count the caller will probe
-- Returns {0, -1} reserved (bucket to come) or {0, bucket} an earlier reservation of
--         this token; {1} not loaded; {2} suspended; {3, used} limit passed;
--         {5, n} the product has n buckets now: ask again.
if redis.call('EXISTS', KEYS[1]) == 0 then return {1} end
if redis.call('HGET', KEYS[1], 'susp') == '1' then return {2} end
local n = tonumber(redis.call('HGET', KEYS[1], 'buckets'))
if n ~= tonumber(ARGV[6]) then return {5, n} end
local earlier = redis.call('HGET', KEYS[3], ARGV[4])
if earlier then
  return {0, tonumber(string.match(earlier, '^(%-?%d+)|'))}
end
local q = tonumber(ARGV[2])
local used = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if used + q > tonumber(ARGV[3]) then return {3, used} end
redis.call('HINCRBY', KEYS[2], ARGV[1], q)
redis.call('HSET', KEYS[3], ARGV[4], '-1|' .. q .. '|' .. ARGV[5] .. '|' .. ARGV[1])
return {0, -1}
