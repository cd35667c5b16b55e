-- Admits one connection of an app with a connection quota, atomically for the cluster: counts it (in the
-- app's total and in this node's share, as count.lua would) only while the total is under the limit.
-- KEYS: 1 the node's own counts, 2 the app's connections total. ARGV: 1 app id, 2 the limit.
-- Returns 1 when admitted (and counted), 0 when the app has its quota.
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[2]) then return 0 end
redis.call('INCRBY', KEYS[2], 1)
redis.call('HINCRBY', KEYS[1], 'c|' .. ARGV[1], 1)
return 1
