-- Prepended to join.lua, leave.lua and reap.lua. A channel's member-set version rises with every change of its
-- member list (a user's first join, last leave, or new user_info): Redis time in microseconds, or one more than
-- the last when that is later, so it keeps rising even after the key was deleted with the channel's last member.
-- Each change is also written to the channel's change log, a sorted set scored by version whose entries read
-- '{version}|{previous version}|{op}{length of user id}:{user id}{user_info}' (op '+' for a user in or changed,
-- '-' for a user out); the previous version chains the entries, so a gap (a change made without a log entry)
-- shows. The log keeps the last 2 x members + 16 changes, at most 256: a node that knows the list at a version
-- still in the log is sent only the changes after it (join.lua) instead of the whole list.
local function bump_version(key, log, users, op, user, info)
  local t = redis.call('TIME')
  local before = redis.call('GET', key) or '0'
  local v = math.max(tonumber(before) + 1, tonumber(t[1]) * 1000000 + tonumber(t[2]))
  local text = string.format('%.0f', v)
  redis.call('SET', key, text)
  redis.call('ZADD', log, v, text .. '|' .. before .. '|' .. op .. #user .. ':' .. user .. (info or ''))
  local keep = math.min(256, 2 * redis.call('HLEN', users) + 16)
  if redis.call('ZCARD', log) > keep then redis.call('ZREMRANGEBYRANK', log, 0, -keep - 1) end
  return v
end
