-- bucket_settle.lua — Redis Cluster: a bucket's share of ending a hold, once: the
-- units noted under the token stop being in flight (and go back to 'avail' on a
-- release).
--
-- KEYS[1] {P:pID:bN}   ARGV[1] token  ARGV[2] 'commit' | 'release'
-- Returns the units moved (0 when there was nothing under the token).
local units = redis.call('HGET', KEYS[1], 'r:' .. ARGV[1])
if not units then return 0 end
units = tonumber(units)
redis.call('HDEL', KEYS[1], 'r:' .. ARGV[1])
redis.call('HINCRBY', KEYS[1], 'inflight', -units)
if ARGV[2] == 'release' then redis.call('HINCRBY', KEYS[1], 'avail', units) end
return units
