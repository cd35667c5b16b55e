-- Admits one connection of an app with a connection quota, atomically for the cluster: counts it (in the
-- app's total and in this node's share, as count.lua would) only while the total is under the limit.
-- KEYS: 1 the node's own counts (herald:node:{id}:counts). ARGV: 1 app id, 2 the limit.
-- Returns 1 when admitted (and counted), 0 when the app has its quota.
local total_key = 'herald:' .. ARGV[1] .. ':connections'
if tonumber(redis.call('GET', total_key) or '0') >= tonumber(ARGV[2]) then return 0 end
redis.call('INCRBY', total_key, 1)
redis.call('HINCRBY', KEYS[1], 'c|' .. ARGV[1], 1)
return 1
