-- settle.lua — end a reservation exactly once (single Redis).
-- 'commit': the order is in the database, the units stop being in flight.
-- 'release': no order was written, the units and the buyer's quota go back.
-- A token settled before (or wiped by a rebuild) changes nothing.
--
-- KEYS[1] {P:pID}:res   KEYS[2] {P:pID}:quota   KEYS[3] {P:pID:bN} (the reserved bucket)
-- ARGV[1] token  ARGV[2] 'commit' | 'release'
-- Returns 1 when settled now, 0 when there was nothing to settle.
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return 0 end
local _, q, _, user = string.match(record, '^(%d+)|(%d+)|(%d+)|(.*)$')
q = tonumber(q)
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('HINCRBY', KEYS[3], 'inflight', -q)
  if ARGV[2] == 'release' then redis.call('HINCRBY', KEYS[3], 'avail', q) end
end
if ARGV[2] == 'release' then
  if redis.call('HINCRBY', KEYS[2], user, -q) <= 0 then redis.call('HDEL', KEYS[2], user) end
end
return 1
