-- bucket_adjust.lua — Redis Cluster: move a bucket's counters in its own slot (the
-- second half of a settle, a return or a stock change), if the bucket exists. A
-- negative avail delta larger than what the bucket holds is refused.
--
-- KEYS[1] {P:pID:bN}   ARGV[1] avail delta  ARGV[2] inflight delta
-- Returns 1 when adjusted, 0 when the bucket is missing, -1 when refused.
local avail = redis.call('HGET', KEYS[1], 'avail')
if not avail then return 0 end
local delta = tonumber(ARGV[1])
if delta < 0 and tonumber(avail) + delta < 0 then return -1 end
redis.call('HINCRBY', KEYS[1], 'avail', delta)
redis.call('HINCRBY', KEYS[1], 'inflight', tonumber(ARGV[2]))
return 1
