-- Removes the presence entries and the connection/subscription counts of every node whose lease has expired,
-- exactly once for the cluster (the script is atomic, and the node leaves the sorted set in the same step).
-- KEYS: 1 the node sorted set.
-- ARGV: 1 the calling node's id, 2 a grace in ms: only leases expired for longer than that are reaped, so a
-- node that was merely slow renews first; 3 the mode; 4 the caller's lease expiry as its last renewal set it.
--   'others': reap the nodes whose lease expired, never the caller; and only while the caller's lease is
--   live and still the one it knows. A reap that reaches Redis late (queued in a socket during a stall) finds
--   the caller's lease expired, or renewed by a renewal queued before it, and does nothing: a stall never
--   makes one live node wipe another whose renewal is still on its way.
--   'self': the caller gives its own lease up (a clean shutdown): reap the caller only.
-- Every reaped node gets a lasting marker (herald:node:{id}:reaped = '{reaper}@{time}', kept a day) that its
-- renewals report until it has put its state back (unmark.lua), so a node learns it was reaped even if the one
-- reply that said so was lost; a second reap during that re-registration sets a new value, which is not
-- cleared by the first one's end.
-- Returns {reaped node ids, {app1, channel1, user1, version1, app2, ...}, {app1, channel1, ...}}: the users
-- whose last connection was on a dead node, for whom member_removed is due (with the member-set version of
-- each departure, as leave.lua gives it), and the channels the dead nodes left empty.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dead
if ARGV[3] == 'self' then
  dead = {ARGV[1]}
else
  local mine = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if not mine or tonumber(mine) < now or mine ~= ARGV[4] then return {{}, {}, {}} end
  dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2] or '0'))
end
local reaped, removed, vacated = {}, {}, {}
for _, node in ipairs(dead) do
  if ARGV[3] == 'self' or node ~= ARGV[1] then
    redis.call('ZREM', KEYS[1], node)
    reaped[#reaped + 1] = node
    if ARGV[3] ~= 'self' then
      redis.call('SET', 'herald:node:' .. node .. ':reaped', ARGV[1] .. '@' .. t[1] .. '.' .. t[2], 'EX', 86400)
    end
    local set = 'herald:node:' .. node .. ':presence'
    for _, entry in ipairs(redis.call('SMEMBERS', set)) do
      local app, channel, socket, user = string.match(entry, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
      if app then
        local base = 'herald:' .. app .. ':presence:' .. channel
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
    local counts = 'herald:node:' .. node .. ':counts'
    local flat = redis.call('HGETALL', counts)
    for i = 1, #flat, 2 do
      local delta = -tonumber(flat[i + 1])
      local kind, app, channel = string.match(flat[i], '^(%a)|([^|]*)|?(.*)$')
      if flat[i] == '#seq' then kind = nil end
      if kind == 'c' then
        local total = redis.call('INCRBY', 'herald:' .. app .. ':connections', delta)
        if total <= 0 then redis.call('DEL', 'herald:' .. app .. ':connections') end
      elseif kind == 's' then
        local total = redis.call('HINCRBY', 'herald:' .. app .. ':channels', channel, delta)
        if total <= 0 then
          redis.call('HDEL', 'herald:' .. app .. ':channels', channel)
          if total - delta > 0 then
            vacated[#vacated + 1] = app
            vacated[#vacated + 1] = channel
          end
        end
      end
    end
    redis.call('DEL', counts)
  end
end
return {reaped, removed, vacated}
