-- bucket_take.lua — Redis Cluster, step 2 of a reservation: units from one bucket, in
-- the bucket's own slot, noted under the hold's token (field r:<token>) so that a
-- retried call answers the first and a settlement moves exactly those units.
--
-- KEYS[1] {P:pID:bN}   ARGV[1] token  ARGV[2] units wanted  ARGV[3] '1' all or none,
-- '0' as many as there are (up to the units wanted)
-- Returns {1, taken, avail_after}; {0, avail} none taken; {-1} the bucket is missing.
local earlier = redis.call('HGET', KEYS[1], 'r:' .. ARGV[1])
local avail = redis.call('HGET', KEYS[1], 'avail')
if not avail then return {-1} end
avail = tonumber(avail)
if earlier then return {1, tonumber(earlier), avail} end
local want = tonumber(ARGV[2])
local take = want
if avail < want then
  if ARGV[3] == '1' then return {0, avail} end
  take = avail
end
if take <= 0 then return {0, avail} end
redis.call('HINCRBY', KEYS[1], 'avail', -take)
redis.call('HINCRBY', KEYS[1], 'inflight', take)
redis.call('HSET', KEYS[1], 'r:' .. ARGV[1], take)
return {1, take, avail - take}
