-- Takes a node's reaped marker down once the node has put its state back, unless a later reap set it again.
-- KEYS: 1 the marker. ARGV: 1 the marker's value when the re-registration started.
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
