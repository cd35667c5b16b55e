-- Finds the webhook outboxes whose node is dead (its lease expired or it retired), so a live node can take
-- their events over; an orphan that is empty (all delivered) is deleted and forgotten.
-- KEYS: 1 the set of nodes with an outbox, 2 the node sorted set.
-- ARGV: 1 the calling node's id.
-- Returns {orphaned node ids with events left, live node ids}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local orphans = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local lease = redis.call('ZSCORE', KEYS[2], node)
  if node ~= ARGV[1] and (not lease or tonumber(lease) < now) then
    local stream = 'herald:node:' .. node .. ':webhooks'
    if redis.call('XLEN', stream) == 0 then
      redis.call('DEL', stream, stream .. ':seq')
      redis.call('SREM', KEYS[1], node)
    else
      orphans[#orphans + 1] = node
    end
  end
end
return {orphans, redis.call('ZRANGEBYSCORE', KEYS[2], now, '+inf')}
