-- Prepended (after member_version.lua) to reap.lua, reap_channel.lua and reap_counts.lua: taking back what one
-- node held. Key names found in an entry are built with the layout's formats (string.format patterns, given by
-- the caller), so the same code serves one Redis and Redis Cluster, where the caller passes only keys of one
-- slot.

-- Removes every presence entry of the node's set (app|channel|socket|user) and the set itself; appends
-- app, channel, user, version to `removed` for each user whose last connection it was.
local function reap_presence(set, base_format, removed)
  for _, entry in ipairs(redis.call('SMEMBERS', set)) do
    local app, channel, socket, user = string.match(entry, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
    if app then
      local base = string.format(base_format, app, channel)
      if redis.call('HDEL', base .. ':conns', socket) == 1 then
        local n = redis.call('HINCRBY', base .. ':users', user, -1)
        if n <= 0 then
          redis.call('HDEL', base .. ':users', user)
          redis.call('HDEL', base .. ':info', user)
          removed[#removed + 1] = app
          removed[#removed + 1] = channel
          removed[#removed + 1] = user
          removed[#removed + 1] = string.format('%.0f', bump_version(base .. ':version', base .. ':log', base .. ':users', '-', user))
          if redis.call('EXISTS', base .. ':users') == 0 then redis.call('DEL', base .. ':version', base .. ':log') end
        end
      end
    end
  end
  redis.call('DEL', set)
end

-- Subtracts the node's share of the counts (c|app, s|app|channel) from the cluster totals and deletes it;
-- appends app, channel to `vacated` for each channel that fell to no subscriber.
local function reap_counts(counts, connections_format, channels_format, vacated)
  local flat = redis.call('HGETALL', counts)
  for i = 1, #flat, 2 do
    local delta = -tonumber(flat[i + 1])
    local kind, app, channel = string.match(flat[i], '^(%a)|([^|]*)|?(.*)$')
    if flat[i] == '#seq' then kind = nil end
    if kind == 'c' then
      local key = string.format(connections_format, app)
      local total = redis.call('INCRBY', key, delta)
      if total <= 0 then redis.call('DEL', key) end
    elseif kind == 's' then
      local key = string.format(channels_format, app)
      local total = redis.call('HINCRBY', key, channel, delta)
      if total <= 0 then
        redis.call('HDEL', key, channel)
        if total - delta > 0 then
          vacated[#vacated + 1] = app
          vacated[#vacated + 1] = channel
        end
      end
    end
  end
  redis.call('DEL', counts)
end
