-- Redis Cluster: takes back one reaped node's share of one app's counts (one slot), atomically.
-- KEYS: 1 the node's share of the app. ARGV: 1 the connections format, 2 the channels format.
-- Returns {app1, channel1, ...}: the channels left with no subscriber, as reap.lua's third list.
local vacated = {}
reap_counts(KEYS[1], ARGV[1], ARGV[2], vacated)
return vacated
