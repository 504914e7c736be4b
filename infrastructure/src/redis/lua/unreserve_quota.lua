-- unreserve_quota.lua — Redis Cluster: the product-slot half of ending a hold, once
-- (after its buckets' halves): drop its record and, unless committed, give the
-- buyer's quota back.
--
-- KEYS[1] {P:pID}:res  KEYS[2] {P:pID}:quota
-- ARGV[1] token  ARGV[2] 'commit' | 'release'
-- Returns 1 when ended now, 0 when there was nothing to end.
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return 0 end
local q, user = string.match(record, '^[op]|(%d+)|[%d:,]*|%d+|(.*)$')
redis.call('HDEL', KEYS[1], ARGV[1])
if ARGV[2] == 'release' then
  if redis.call('HINCRBY', KEYS[2], user, -tonumber(q)) <= 0 then redis.call('HDEL', KEYS[2], user) end
end
return 1
