-- finish_return.lua — end an announced return exactly once (single Redis): add the
-- deltas to the buckets and give the buyer's quota back. A token finished before (or
-- wiped by a rebuild) changes nothing.
--
-- KEYS[1] {P:pID}:ret   KEYS[2] {P:pID}:quota   KEYS[3..] {P:pID:bN} one per delta
-- ARGV[1] token  ARGV[2] user ('' for none)  ARGV[3] quota units  ARGV[4..] deltas
-- Returns 1 when applied now, 0 when there was nothing to finish.
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
for i = 3, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HINCRBY', KEYS[i], 'avail', tonumber(ARGV[i + 1]))
  end
end
if ARGV[2] ~= '' then
  if redis.call('HINCRBY', KEYS[2], ARGV[2], -tonumber(ARGV[3])) <= 0 then
    redis.call('HDEL', KEYS[2], ARGV[2])
  end
end
return 1
