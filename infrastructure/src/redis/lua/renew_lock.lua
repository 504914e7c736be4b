-- renew_lock.lua — extend a lock only if it is still ours (compare-and-expire).
--
-- KEYS[1] the lock key   ARGV[1] the owner's token  ARGV[2] ttl (ms)
-- Returns 1 when extended, 0 when it expired or belongs to someone else.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
