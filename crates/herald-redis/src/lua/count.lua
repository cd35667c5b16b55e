-- Applies a batch of count changes from one node, atomically.
-- KEYS: 1 the node's own counts (herald:node:{id}:counts), so a dead node's share can be taken back.
-- ARGV: 1 the batch's sequence number (per node, rising), then pairs of (field, delta); a field is 'c|{app}'
-- (connections) or 's|{app}|{channel}' (subscriptions). A batch whose number is not above the last one applied
-- is skipped, so a batch retried after a timeout is never counted twice.
-- Cluster totals: herald:{app}:connections (string) and herald:{app}:channels (hash channel -> count).
-- Returns {app1, channel1, 'occupied'|'vacated', ...}: the channels whose cluster-wide count crossed zero in
-- this batch (the channel_occupied / channel_vacated webhooks, decided once for the cluster).
local transitions = {}
local last = tonumber(redis.call('HGET', KEYS[1], '#seq') or '0')
if tonumber(ARGV[1]) <= last then return transitions end
redis.call('HSET', KEYS[1], '#seq', ARGV[1])
for i = 2, #ARGV, 2 do
  local field, delta = ARGV[i], tonumber(ARGV[i + 1])
  local n = redis.call('HINCRBY', KEYS[1], field, delta)
  if n <= 0 then redis.call('HDEL', KEYS[1], field) end
  local kind, app, channel = string.match(field, '^(%a)|([^|]*)|?(.*)$')
  if kind == 'c' then
    local total = redis.call('INCRBY', 'herald:' .. app .. ':connections', delta)
    if total <= 0 then redis.call('DEL', 'herald:' .. app .. ':connections') end
  elseif kind == 's' then
    local total = redis.call('HINCRBY', 'herald:' .. app .. ':channels', channel, delta)
    if total <= 0 then redis.call('HDEL', 'herald:' .. app .. ':channels', channel) end
    local before = total - delta
    if before <= 0 and total > 0 then
      transitions[#transitions + 1] = app
      transitions[#transitions + 1] = channel
      transitions[#transitions + 1] = 'occupied'
    elseif before > 0 and total <= 0 then
      transitions[#transitions + 1] = app
      transitions[#transitions + 1] = channel
      transitions[#transitions + 1] = 'vacated'
    end
  end
end
return transitions
