-- reserve.lua — reserve a buyer's quota and stock, atomically (single Redis; on a
-- Cluster see reserve_quota.lua + bucket_take.lua). The quota is checked before any
-- stock is touched, so a refused request burns none. The units come from the first
-- bucket (in the buyer's probe order) that holds them all, else from several; a
-- token already reserved answers its earlier reservation (a retried call).
--
-- A product of several buckets is first asked with the buyer's home bucket alone
-- (one key, one read: the common case while stock lasts); only when that bucket
-- holds too few does the caller ask again with every bucket.
--
-- KEYS[1]  {P:pID}:meta   hash: buckets, susp (suspended until, ms), owner
-- KEYS[2]  {P:pID}:quota  hash: user -> units held
-- KEYS[3]  {P:pID}:res    hash: token -> "kind|qty|b:u,b:u|ts_ms|user" (holds)
-- KEYS[4..] {P:pID:bN}    hash: avail, inflight — every bucket in probe order, or
--                         the home bucket alone
-- then, for a placement recorded with its hold (ARGV[7] = 2 or 3), two or three more:
--          <prefix>:pl:<token>     string: "b:u,b:u|<the placement as JSON>" (record)
--          <prefix>:plq            sorted set: token by acceptance time, ms (queued)
--          <prefix>:plk:<user:key> string: token (the buyer's Idempotency-Key, if any)
-- ARGV[1] user  ARGV[2] quantity  ARGV[3] limit  ARGV[4] token  ARGV[5] kind (o|p)
-- ARGV[6] the number of buckets the caller believes the product has
-- ARGV[7] the number of record keys after the buckets (0, 2 or 3)  ARGV[8] the
-- record's JSON ('' when none)  ARGV[9] the queue's bound, ms (0 = none)  ARGV[10]
-- the placements the consumers may be writing now  ARGV[11..] the bucket numbers of
-- the bucket keys
--
-- A placement is refused before anything is taken when the queue is behind: when the
-- placement after the ARGV[10] oldest (those the consumers may be writing) was
-- accepted more than ARGV[9] ms ago — a backlog the consumers would take that long
-- to clear, or longer.
--
-- Returns {0, left, b1, u1, b2, u2, ...} reserved (left = -1 when not computed)
--         {1}        not loaded (or a bucket key is missing: rebuild)
--         {2}        suspended
--         {3, used}  the limit would be passed
--         {4, left}  fewer than quantity units in all buckets together
--         {5, n}     the product has n buckets now, not ARGV[6]: ask again
--         {6}        the home bucket alone holds too few: ask with every bucket
--         {7, ms}    the placement queue is ms behind (ARGV[9]): nothing was taken
local meta, quota, res = KEYS[1], KEYS[2], KEYS[3]
local last = #KEYS - tonumber(ARGV[7])
if redis.call('EXISTS', meta) == 0 then return {1} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if tonumber(redis.call('HGET', meta, 'susp') or '0') > now then return {2} end
local n = tonumber(redis.call('HGET', meta, 'buckets'))
if n ~= tonumber(ARGV[6]) then return {5, n} end
local function parts_of(text)
  local out = {}
  for b, u in string.gmatch(text, '(%d+):(%d+)') do
    out[#out + 1] = tonumber(b)
    out[#out + 1] = tonumber(u)
  end
  return out
end
local earlier = redis.call('HGET', res, ARGV[4])
if earlier then
  local parts = string.match(earlier, '^[op]|%d+|([%d:,]*)|')
  local out = {0, -1}
  for _, v in ipairs(parts_of(parts or '')) do out[#out + 1] = v end
  return out
end
local bound = tonumber(ARGV[9])
if last < #KEYS and bound > 0 then
  local nth = redis.call('ZRANGE', KEYS[last + 2], ARGV[10], ARGV[10], 'WITHSCORES')
  if nth[2] and now - tonumber(nth[2]) > bound then return {7, now - tonumber(nth[2])} end
end
local q = tonumber(ARGV[2])
local used = tonumber(redis.call('HGET', quota, ARGV[1]) or '0')
if used + q > tonumber(ARGV[3]) then return {3, used} end
local avail = {}
local total = 0
for i = 4, last do
  local a = redis.call('HGET', KEYS[i], 'avail')
  if not a then
    redis.call('DEL', meta)
    return {1}
  end
  avail[i] = tonumber(a)
  total = total + avail[i]
end
-- Asked with the home bucket alone: too few there says nothing about the others.
local every = last - 3 == n
if total < q then
  if not every then return {6} end
  return {4, total}
end
local taken = {}
for i = 4, last do
  if avail[i] >= q then
    taken[#taken + 1] = {i, q}
    break
  end
end
if #taken == 0 then
  local left = q
  for i = 4, last do
    if left == 0 then break end
    local take = math.min(avail[i], left)
    if take > 0 then
      taken[#taken + 1] = {i, take}
      left = left - take
    end
  end
end
local out = {0, every and total - q or -1}
local text = {}
for _, p in ipairs(taken) do
  redis.call('HINCRBY', KEYS[p[1]], 'avail', -p[2])
  redis.call('HINCRBY', KEYS[p[1]], 'inflight', p[2])
  local bucket = ARGV[p[1] + 7]
  text[#text + 1] = bucket .. ':' .. p[2]
  out[#out + 1] = tonumber(bucket)
  out[#out + 1] = p[2]
end
redis.call('HINCRBY', quota, ARGV[1], q)
redis.call('HSET', res, ARGV[4],
  ARGV[5] .. '|' .. q .. '|' .. table.concat(text, ',') .. '|' .. now .. '|' .. ARGV[1])
if last < #KEYS then
  redis.call('SET', KEYS[last + 1], table.concat(text, ',') .. '|' .. ARGV[8])
  redis.call('ZADD', KEYS[last + 2], now, ARGV[4])
  if last + 3 == #KEYS then redis.call('SET', KEYS[last + 3], ARGV[4]) end
end
return out
