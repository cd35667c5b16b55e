-- Finds the webhook outboxes whose node is gone from the node set (reaped after its lease expired, or
-- retired), so a live node can take their events over; a node whose lease merely lapsed for a moment is not
-- an orphan until it is reaped. An orphan that is empty (all delivered) is deleted and forgotten.
-- KEYS: 1 the set of nodes with an outbox, 2 the node sorted set.
-- ARGV: 1 the calling node's id, 2 the format of a node's outbox stream name.
-- Returns {orphaned node ids with events left, the ids of the nodes in the node set}.
local orphans = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if node ~= ARGV[1] and not redis.call('ZSCORE', KEYS[2], node) then
    local stream = string.format(ARGV[2], node)
    if redis.call('XLEN', stream) == 0 then
      redis.call('DEL', stream, stream .. ':seq')
      redis.call('SREM', KEYS[1], node)
    else
      orphans[#orphans + 1] = node
    end
  end
end
return {orphans, redis.call('ZRANGE', KEYS[2], 0, -1)}
