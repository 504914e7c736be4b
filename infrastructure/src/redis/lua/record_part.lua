-- record_part.lua — Redis Cluster, step 3 of a reservation: note a part (bucket and
-- units) on the hold's record, once.
--
-- KEYS[1] {P:pID}:res   ARGV[1] token  ARGV[2] bucket  ARGV[3] units
-- Returns 1 when noted (or noted before), 0 when the record is gone.
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return 0 end
local kind, q, parts, rest = string.match(record, '^([op])|(%d+)|([%d:,]*)|(.*)$')
for b in string.gmatch(parts, '(%d+):%d+') do
  if b == ARGV[2] then return 1 end
end
local part = ARGV[2] .. ':' .. ARGV[3]
if parts ~= '' then part = parts .. ',' .. part end
redis.call('HSET', KEYS[1], ARGV[1], kind .. '|' .. q .. '|' .. part .. '|' .. rest)
return 1
