-- Adds one connection to a presence channel, atomically.
-- KEYS: 1 conns (socket -> user), 2 users (user -> connection count), 3 info (user -> user_info), 4 the node's
-- entry set, 5 the channel's member-set version.
-- ARGV: 1 socket id, 2 user id, 3 user_info JSON, 4 member limit, 5 the node entry (app|channel|socket|user)
-- Returns {first, version, user1, info1, user2, info2, ...}: first is 1 when this is the user's first
-- connection anywhere (the version then rises: it is the version of this arrival), 0 when not; the list is the
-- member set of that version. Or {-1} when a new user would exceed the limit (nothing changed).
-- (bump_version comes from member_version.lua, prepended.)
local count = tonumber(redis.call('HGET', KEYS[2], ARGV[2]) or '0')
local first = 0
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then
  if count == 0 and redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[4]) then
    return {-1}
  end
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HINCRBY', KEYS[2], ARGV[2], 1)
  if count == 0 then first = 1 end
end
redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[4], ARGV[5])
local version
if first == 1 then
  version = bump_version(KEYS[5])
else
  version = tonumber(redis.call('GET', KEYS[5]) or '0')
end
local out = {first, version}
local all = redis.call('HGETALL', KEYS[3])
for i = 1, #all do out[#out + 1] = all[i] end
return out
