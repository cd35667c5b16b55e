-- Prepended to join.lua, leave.lua and reap.lua. A channel's member-set version rises with every change of its
-- member list (a user's first join, last leave, or new user_info): Redis time in microseconds, or one more than
-- the last when that is later, so it keeps rising even after the key was deleted with the channel's last member.
-- Each change is also written to the channel's change log, a sorted set scored by version whose entries read
-- '{version}|{op}{length of user id}:{user id}{user_info}' (op '+' for a user in or changed, '-' for a user out),
-- keeping the last LOG_KEPT: a node that knows the list at a version still in the log is sent only the changes
-- after it (join.lua) instead of the whole list.
local LOG_KEPT = 256
local function bump_version(key, log, op, user, info)
  local t = redis.call('TIME')
  local v = math.max(tonumber(redis.call('GET', key) or '0') + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
  local text = string.format('%.0f', v)
  redis.call('SET', key, text)
  redis.call('ZADD', log, v, text .. '|' .. op .. #user .. ':' .. user .. (info or ''))
  if redis.call('ZCARD', log) > LOG_KEPT then redis.call('ZREMRANGEBYRANK', log, 0, -LOG_KEPT - 1) end
  return v
end
