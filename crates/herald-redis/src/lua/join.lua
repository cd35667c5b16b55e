-- Adds one connection to a presence channel, atomically.
-- KEYS: 1 conns (socket -> user), 2 users (user -> connection count), 3 info (user -> user_info), 4 the node's
-- entry set, 5 the channel's member-set version, 6 the channel's change log.
-- ARGV: 1 socket id, 2 user id, 3 user_info JSON, 4 member limit, 5 the node entry (app|channel|socket|user),
-- 6 the version of the member list the calling node holds ('0' for none).
-- Returns {first, version, how, ...}: first is 1 when this is the user's first connection anywhere (the version
-- then is the version of this arrival), 0 when not; the version is the member list's after this join; how says
-- what follows: 0 nothing (the node's list is that version already), 1 the change log's entries after the
-- node's version, in order, 2 the whole list (user1, info1, user2, info2, ...), 3 the whole list, to replace
-- the node's copy even though the copy's version is higher (the channel's versions went back: it emptied and
-- Redis's clock is behind the one that wrote the copy's version). Or {-1} when a new user would exceed the
-- limit (nothing changed). The changes are sent only when they chain from the node's version to this one
-- without a gap; otherwise the whole list.
-- (bump_version comes from member_version.lua, prepended.)
local count = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
local first = 0
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  if count == 0 and redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[4]) then
    return {-1}
  end
  local channel_was_empty = redis.call('EXISTS', KEYS[2]) == 0
  -- The first write must be one Redis refuses when it is out of memory (HSET is; DEL is not): once a script
  -- has written, Redis lets the rest of it write past maxmemory.
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
  if channel_was_empty then
    -- The channel's first member: nothing before it is worth a delta (a log left over is dropped).
    redis.call('DEL', KEYS[6])
  end
  if count == 0 then first = 1 end
end
redis.call('SADD', KEYS[4], ARGV[5])
local version
if first == 1 or redis.call('HGET', KEYS[3], ARGV[2]) ~= ARGV[3] then
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
  version = bump_version(KEYS[5], KEYS[6], KEYS[2], '+', ARGV[2], ARGV[3])
else
  version = tonumber(redis.call('GET', KEYS[5]) or '0')
end
local known = ARGV[6]
local current = string.format('%.0f', version)
if known ~= '0' and current == known then return {first, version, 0} end
if known ~= '0' and tonumber(known) < version then
  local out, expected = {first, version, 1}, known
  for _, entry in ipairs(redis.call('ZRANGEBYSCORE', KEYS[6], '(' .. known, '+inf')) do
    local v, previous = string.match(entry, '^(%d+)|(%d+)|')
    if previous ~= expected then expected = nil break end
    expected = v
    out[#out + 1] = entry
  end
  if expected == current then return out end
end
local how = 2
if known ~= '0' and tonumber(known) > version then how = 3 end
local out = {first, version, how}
local all = redis.call('HGETALL', KEYS[3])
for i = 1, #all do out[#out + 1] = all[i] end
return out
