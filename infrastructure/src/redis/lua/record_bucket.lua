-- record_bucket.lua — Redis Cluster, step 3 of a reservation: note the bucket the
-- units came from on the reservation record.
--
-- KEYS[1] {P:pID}:res   ARGV[1] token  ARGV[2] bucket
-- Returns 1 when recorded, 0 when the record is gone (wiped by a rebuild).
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. string.match(record, '^%-?%d+(|.*)$'))
return 1
