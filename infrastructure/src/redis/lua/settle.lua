-- settle.lua — end a hold exactly once (single Redis).
-- 'commit': the order is in the database, the units stop being in flight.
-- 'release': no order was written, the units and the buyer's quota go back.
-- The hold's own record says where its units are; the caller passes the bucket keys
-- it believes in, and is told the record's parts when they differ (then it calls
-- again with those). A token settled before (or wiped by a rebuild) changes nothing.
--
-- KEYS[1] {P:pID}:res  KEYS[2] {P:pID}:quota  KEYS[3..] {P:pID:bN} the parts' buckets
-- ARGV[1] token  ARGV[2] 'commit' | 'release'  ARGV[3..] the bucket numbers of KEYS[3..]
-- Returns {1, ''} settled now, {0, ''} nothing to settle, {-3, "b:u,b:u"} call
-- again with these parts' buckets.
local record = redis.call('HGET', KEYS[1], ARGV[1])
if not record then return {0, ''} end
local q, parts, user = string.match(record, '^[op]|(%d+)|([%d:,]*)|%d+|(.*)$')
local index = {}
for i = 3, #KEYS do index[ARGV[i]] = KEYS[i] end
local moves = {}
for b, u in string.gmatch(parts, '(%d+):(%d+)') do
  local key = index[b]
  if not key then return {-3, parts} end
  moves[#moves + 1] = {key, tonumber(u)}
end
redis.call('HDEL', KEYS[1], ARGV[1])
for _, m in ipairs(moves) do
  if redis.call('EXISTS', m[1]) == 1 then
    redis.call('HINCRBY', m[1], 'inflight', -m[2])
    if ARGV[2] == 'release' then redis.call('HINCRBY', m[1], 'avail', m[2]) end
  end
end
if ARGV[2] == 'release' then
  if redis.call('HINCRBY', KEYS[2], user, -tonumber(q)) <= 0 then redis.call('HDEL', KEYS[2], user) end
end
return {1, ''}
