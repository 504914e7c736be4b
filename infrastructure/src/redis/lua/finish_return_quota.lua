-- finish_return_quota.lua — Redis Cluster: end an announced return's product-slot
-- half exactly once: drop its record and give the buyer's quota back. The caller
-- then adds the bucket deltas (bucket_adjust.lua) only when this answered 1.
--
-- KEYS[1] {P:pID}:ret  KEYS[2] {P:pID}:quota
-- ARGV[1] token  ARGV[2] user ('' for none)  ARGV[3] quota units
-- Returns 1 when ended now, 0 when there was nothing to end.
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
if ARGV[2] ~= '' then
  if redis.call('HINCRBY', KEYS[2], ARGV[2], -tonumber(ARGV[3])) <= 0 then
    redis.call('HDEL', KEYS[2], ARGV[2])
  end
end
return 1
