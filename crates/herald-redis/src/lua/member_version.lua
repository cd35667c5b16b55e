-- Prepended to join.lua, leave.lua and reap.lua. A channel's member-set version rises with every first join
-- and last leave of a user: Redis time in microseconds, or one more than the last when that is later, so it
-- keeps rising even after the key was deleted with the channel's last member.
local function bump_version(key)
  local t = redis.call('TIME')
  local v = math.max(tonumber(redis.call('GET', key) or '0') + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
  redis.call('SET', key, string.format('%.0f', v))
  return v
end
