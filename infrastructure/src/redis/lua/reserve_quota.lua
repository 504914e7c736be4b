-- reserve_quota.lua — Redis Cluster, step 1 of a reservation: the buyer's quota and
-- the hold's record, in the product's slot. Step 2 takes the units from buckets
-- (bucket_take.lua, other slots) and notes each part (record_part.lua); if the
-- buckets cannot give them all, they are given back and unreserve_quota.lua ends the
-- hold. A crash in between leaves a hold that the recovery job ends.
--
-- KEYS[1] {P:pID}:meta  KEYS[2] {P:pID}:quota  KEYS[3] {P:pID}:res
-- ARGV[1] user  ARGV[2] quantity  ARGV[3] limit  ARGV[4] token  ARGV[5] kind (o|p)
-- ARGV[6] the bucket count the caller will probe
-- Returns {0, ""} reserved (parts to come) or {0, "b:u,..."} an earlier hold of this
--         token; {1} not loaded; {2} suspended; {3, used} limit passed;
--         {5, n} the product has n buckets now: ask again.
if redis.call('EXISTS', KEYS[1]) == 0 then return {1} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(redis.call('HGET', KEYS[1], 'susp') or '0') > now then return {2} end
local n = tonumber(redis.call('HGET', KEYS[1], 'buckets'))
if n ~= tonumber(ARGV[6]) then return {5, n} end
local earlier = redis.call('HGET', KEYS[3], ARGV[4])
if earlier then
  return {0, string.match(earlier, '^[op]|%d+|([%d:,]*)|') or ''}
end
local q = tonumber(ARGV[2])
local used = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if used + q > tonumber(ARGV[3]) then return {3, used} end
redis.call('HINCRBY', KEYS[2], ARGV[1], q)
redis.call('HSET', KEYS[3], ARGV[4], ARGV[5] .. '|' .. q .. '||' .. now .. '|' .. ARGV[1])
return {0, ''}
