-- bucket_adjust.lua — Redis Cluster: move a bucket's available units in its own slot
-- (a return's or a stock change's share), once per token (field a:<token>), so a
-- retried call changes nothing the second time. A removal larger than what the
-- bucket holds is refused.
--
-- KEYS[1] {P:pID:bN}   ARGV[1] token  ARGV[2] avail delta
-- Returns 1 adjusted, 2 adjusted before, 0 the bucket is missing, -1 refused.
local avail = redis.call('HGET', KEYS[1], 'avail')
if not avail then return 0 end
if redis.call('HEXISTS', KEYS[1], 'a:' .. ARGV[1]) == 1 then return 2 end
local delta = tonumber(ARGV[2])
if delta < 0 and tonumber(avail) + delta < 0 then return -1 end
redis.call('HINCRBY', KEYS[1], 'avail', delta)
redis.call('HSET', KEYS[1], 'a:' .. ARGV[1], 1)
return 1
