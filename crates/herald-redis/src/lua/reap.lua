-- Removes the presence entries and the connection/subscription counts of every node whose lease has expired,
-- exactly once for the cluster (the script is atomic, and the node leaves the sorted set in the same step).
-- KEYS: 1 the node sorted set, 2 (Redis Cluster) the set of nodes being reaped.
-- ARGV: 1 the calling node's id, 2 a grace in ms: only leases expired for longer than that are reaped, so a
-- node that was merely slow renews first; 3 the mode; 4 the caller's lease expiry as its last renewal set it;
-- 5 the format of a node's reaped marker; 6, 7, 8 the formats of a presence base, an app's connections and an
-- app's channels; 9, 10 the formats of a node's presence set and count hash, or '' on Redis Cluster, where
-- the reaped nodes are only added to KEYS[2] (their state lies in other slots).
--   'others': reap the nodes whose lease expired, never the caller; and only while the caller's lease is
--   live and still the one it knows. A reap that reaches Redis late (queued in a socket during a stall) finds
--   the caller's lease expired, or renewed by a renewal queued before it, and does nothing: a stall never
--   makes one live node wipe another whose renewal is still on its way.
--   'self': the caller gives its own lease up (a clean shutdown): reap the caller only.
-- Every reaped node gets a lasting marker (its reaped key = '{reaper}@{time}', kept a day) that its
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
      redis.call('SET', string.format(ARGV[5], node), ARGV[1] .. '@' .. t[1] .. '.' .. t[2], 'EX', 86400)
    end
    if ARGV[9] == '' then
      -- Redis Cluster: the node's entries and counts lie in other slots; the caller takes them back slot by
      -- slot, and the node stays in the reaping set until that is done.
      redis.call('SADD', KEYS[2], node)
    else
      reap_presence(string.format(ARGV[9], node), ARGV[6], removed)
      reap_counts(string.format(ARGV[10], node), ARGV[7], ARGV[8], vacated)
    end
  end
end
return {reaped, removed, vacated}
