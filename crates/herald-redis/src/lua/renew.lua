-- Renews a node's lease and tells it what happened to Redis since the last renewal.
-- KEYS: 1 the node sorted set, 2 the epoch key, 3 the node's reaped marker (set by reap.lua), 4 (Redis Cluster)
-- the set of nodes whose state is still being taken back slot by slot: while the node is in it, its being
-- reaped is not reported yet, so it puts its state back only after the reaper is done with the old one.
-- ARGV: 1 node id, 2 lease in ms, 3 the epoch the node knows ('' on its first renewal), 4 a fresh epoch to use
-- if none is set.
-- Returns {status, epoch, lease expiry (the node's score, which its reaps quote), the reaped marker or ''}: 'ok'; 'lost' when Redis lost its data (the epoch vanished or changed); 'reaped' when
-- the node's lease had expired and another node removed its presence entries: reported on every renewal
-- while the marker stands, until the node has put its state back and deleted the marker.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local epoch = redis.call('GET', KEYS[2])
local status = 'ok'
if not epoch then
  redis.call('SET', KEYS[2], ARGV[4])
  epoch = ARGV[4]
  if ARGV[3] ~= '' then status = 'lost' end
elseif ARGV[3] ~= '' and epoch ~= ARGV[3] then
  status = 'lost'
elseif KEYS[4] and redis.call('SISMEMBER', KEYS[4], ARGV[1]) == 1 then
  status = 'ok'
elseif redis.call('EXISTS', KEYS[3]) == 1 then
  status = 'reaped'
elseif ARGV[3] ~= '' and not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  status = 'reaped'
end
local expiry = now + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
return {status, epoch, redis.call('ZSCORE', KEYS[1], ARGV[1]), redis.call('GET', KEYS[3]) or ''}
