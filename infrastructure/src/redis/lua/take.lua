-- take.lua — take unsold units out of buckets, all or nothing (single Redis).
--
-- KEYS[1..] {P:pID:bN}   ARGV[i] units to take from KEYS[i]
-- Returns 1 when taken, 0 when some bucket holds fewer (nothing changed).
for i = 1, #KEYS do
  if tonumber(redis.call('HGET', KEYS[i], 'avail') or '-1') < tonumber(ARGV[i]) then return 0 end
end
for i = 1, #KEYS do
  redis.call('HINCRBY', KEYS[i], 'avail', -tonumber(ARGV[i]))
end
return 1
