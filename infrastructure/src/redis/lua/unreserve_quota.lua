-- unreserve_quota.lua — Redis Cluster: end a reservation's product-slot half exactly
-- once: drop its record and, unless committed, give the buyer's quota back. Tells the
-- caller the bucket and quantity so it can adjust the bucket's slot.
--
-- KEYS[1] {P:pID}:res  KEYS[2] {P:pID}:quota
-- ARGV[1] token  ARGV[2] 'commit' | 'release'
-- Returns {1, bucket, quantity} when ended now, {0} when there was nothing to end.
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return {0} end
local bucket, q, _, user = string.match(record, '^(%-?%d+)|(%d+)|(%d+)|(.*)$')
q = tonumber(q)
redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[2] == 'release' then
  if redis.call('HINCRBY', KEYS[2], user, -q) <= 0 then redis.call('HDEL', KEYS[2], user) end
end
return {1, tonumber(bucket), q}
