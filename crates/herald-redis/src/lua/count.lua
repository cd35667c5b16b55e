-- Applies a batch of count changes from one node, atomically.
-- KEYS: 1 the node's own counts (its count hash; on Redis Cluster one per app, and a batch names one app), so a
-- dead node's share can be taken back.
-- ARGV: 1 the batch's sequence number (per node, rising), 2 the mode, 3 and 4 the formats of an app's
-- connections and channels keys, then pairs of (field, value); a field is 'c|{app}' (connections) or
-- 's|{app}|{channel}' (subscriptions).
--   mode 'delta': each value is added to the node's share and to the cluster total.
--   mode 'set': the values are the node's whole share (fields absent are 0): each field moves from what the
--   node's share in Redis says to the value given, so a node whose share was taken away (reaped) or lost (Redis
--   restarted empty), or partly re-applied by a late batch, ends with exactly its own counts, never twice.
-- A batch whose number is not above the last one applied is skipped, so a batch retried after a timeout is
-- never counted twice.
-- Cluster totals: the app's connections (string) and channels (hash channel -> count) keys.
-- Returns {app1, channel1, 'occupied'|'vacated', ...}: the channels whose cluster-wide count crossed zero in
-- this batch (the channel_occupied / channel_vacated webhooks, decided once for the cluster).
local transitions = {}
local last = tonumber(redis.call('HGET', KEYS[1], '#seq') or '0')
if tonumber(ARGV[1]) <= last then return transitions end

local function apply(field, delta)
  if delta == 0 then return end
  local n = redis.call('HINCRBY', KEYS[1], field, delta)
  if n <= 0 then redis.call('HDEL', KEYS[1], field) end
  local kind, app, channel = string.match(field, '^(%a)|([^|]*)|?(.*)$')
  if kind == 'c' then
    local key = string.format(ARGV[3], app)
    local total = redis.call('INCRBY', key, delta)
    if total <= 0 then redis.call('DEL', key) end
  elseif kind == 's' then
    local key = string.format(ARGV[4], app)
    local total = redis.call('HINCRBY', key, channel, delta)
    if total <= 0 then redis.call('HDEL', key, channel) end
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

if ARGV[2] == 'set' then
  local wanted = {}
  for i = 5, #ARGV, 2 do wanted[ARGV[i]] = tonumber(ARGV[i + 1]) end
  local held = redis.call('HGETALL', KEYS[1])
  for i = 1, #held, 2 do
    local field = held[i]
    if field ~= '#seq' then
      apply(field, (wanted[field] or 0) - tonumber(held[i + 1]))
      wanted[field] = nil
    end
  end
  for field, value in pairs(wanted) do apply(field, value) end
else
  for i = 5, #ARGV, 2 do apply(ARGV[i], tonumber(ARGV[i + 1])) end
end
redis.call('HSET', KEYS[1], '#seq', ARGV[1])
return transitions
