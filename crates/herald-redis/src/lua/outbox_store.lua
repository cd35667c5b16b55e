-- Stores one batch of a node's webhook events in its outbox stream, exactly once: a batch sent again because
-- its reply was lost (a timeout) carries a number already stored and is skipped.
-- KEYS: 1 the node's outbox stream, 2 its last stored batch number, 3 the set of nodes with an outbox.
-- ARGV: 1 node id, 2 batch number, 3 the stream's length cap, then pairs of app id and event JSON.
-- Returns 1 when stored, 0 when the batch was stored before.
local last = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[2]) <= last then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('XGROUP', 'CREATE', KEYS[1], 'deliver', '0', 'MKSTREAM')
end
for i = 4, #ARGV, 2 do
  redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[3], '*', 'app', ARGV[i], 'event', ARGV[i + 1])
end
redis.call('SET', KEYS[2], ARGV[2], 'EX', 86400)
redis.call('SADD', KEYS[3], ARGV[1])
return 1
