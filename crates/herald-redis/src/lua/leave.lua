-- Removes one connection from a presence channel, atomically.
-- KEYS: as join.lua. ARGV: 1 socket id, 2 user id, 3 the node entry.
-- Returns the version of the user's departure when that was the user's last connection anywhere
-- (member_removed is due), else 0. The version key and the change log go with the channel's last member.
redis.call('SREM', KEYS[4], ARGV[3])
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
local n = redis.call('HINCRBY', KEYS[2], ARGV[2], -1)
if n <= 0 then
  redis.call('HDEL', KEYS[2], ARGV[2])
  redis.call('HDEL', KEYS[3], ARGV[2])
  local version = bump_version(KEYS[5], KEYS[6], KEYS[2], '-', ARGV[2])
  if redis.call('EXISTS', KEYS[2]) == 0 then redis.call('DEL', KEYS[5], KEYS[6]) end
  return version
end
return 0
