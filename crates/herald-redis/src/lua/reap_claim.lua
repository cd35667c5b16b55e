-- Redis Cluster: one reaper at a time takes back a reaped node's state, slot by slot. The claim is a key with
-- an expiry that the reaper extends as it goes; a reaper that stops is replaced once it expires.
-- KEYS: 1 the reaping set, 2 the node's claim key. ARGV: 1 the reaped node, 2 the reaper's id, 3 the claim's
-- life in ms, 4 the mode:
--   'claim': take the claim if the node is still being reaped and nobody else holds it (or keep one's own);
--   'extend': keep one's own claim alive;
--   'done': all of the node is back: it leaves the reaping set (its renewals may then report the reap) and
--   the claim goes, in one step.
-- Returns 1 when the caller holds (or held, for 'done') the claim, 0 when not.
if ARGV[4] == 'claim' then
  if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
  if redis.call('SET', KEYS[2], ARGV[2], 'NX', 'PX', ARGV[3]) then return 1 end
end
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
if ARGV[4] == 'done' then
  redis.call('SREM', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
else
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
return 1
