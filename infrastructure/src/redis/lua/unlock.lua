-- unlock.lua — release a lock only if it is still ours (compare-and-delete).
--
-- KEYS[1] the lock key   ARGV[1] the owner's token
-- Returns 1 when released, 0 when it expired or belongs to someone else.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
