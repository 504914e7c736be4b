-- bucket_take.lua — Redis Cluster, step 2 of a reservation: units from one bucket,
-- in the bucket's own slot.
--
-- KEYS[1] {P:pID:bN}   ARGV[1] quantity
-- Returns {1, avail} taken (avail after), {0, avail} not enough, {-1} missing,
--         {-2} suspended.
local avail = redis.call('HGET', KEYS[1], 'avail')
if not avail then return {-1} end
if redis.call('HGET', KEYS[1], 'susp') == '1' then return {-2} end
local q = tonumber(ARGV[1])
avail = tonumber(avail)
if avail < q then return {0, avail} end
redis.call('HINCRBY', KEYS[1], 'avail', -q)
redis.call('HINCRBY', KEYS[1], 'inflight', q)
return {1, avail - q}
