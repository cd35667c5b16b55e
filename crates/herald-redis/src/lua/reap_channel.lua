-- Redis Cluster: takes back one reaped node's presence entries in one channel (one slot), atomically.
-- KEYS: 1 the node's entry set of the channel. ARGV: 1 the presence base format.
-- Returns {app1, channel1, user1, version1, ...} as reap.lua's second list.
local removed = {}
reap_presence(KEYS[1], ARGV[1], removed)
return removed
