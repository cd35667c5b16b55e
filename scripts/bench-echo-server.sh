#!/usr/bin/env bash
# Herald next to laravel-echo-server, the Node.js server these clients run on today, for the same clients:
# socket.io 2.x (Engine.IO 3) subscribers of one public channel (each run under 25 s: the load clients send
# no Engine.IO heartbeat), broadcasts published in Laravel's Redis
# format (what RedisBroadcaster sends), each server freshly started on its own Redis, RUNS times (default 3).
# Figures: server CPU per delivery, latency, and memory per idle connection. laravel-echo-server is installed
# from npm under target/bench-echo-server/ (nothing of it is committed). Results in target/bench-echo-server/.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SUBS=${BENCH_SUBSCRIBERS:-5000}
DURATION=${BENCH_DURATION:-10}
# 4 events/s to 5,000 subscribers is 20,000 deliveries/s, within what one laravel-echo-server process keeps up
# with; BENCH_RATE=20 (100,000/s) shows where it falls behind.
RATE=${BENCH_RATE:-4}
IDLE=${BENCH_IDLE:-5000}
OUT=target/bench-echo-server
mkdir -p "$OUT"
cargo build --release -q -p herald-server -p loadtest
LOAD=target/release/herald-load
HERALD=target/release/herald
. scripts/lib/bench-common.sh
if [ ! -f "$OUT/node_modules/laravel-echo-server/bin/server.js" ]; then
  (cd "$OUT" && npm init -y >/dev/null && npm install --no-audit --no-fund laravel-echo-server@1.6.3 >/dev/null)
fi
redis_port=""
redis_pid=""
start_redis() {
  redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null & redis_pid=$!
  for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
}
stop_all() { stop; if [ -n "$redis_pid" ]; then kill "$redis_pid" 2>/dev/null || true; wait "$redis_pid" 2>/dev/null || true; fi; redis_pid=""; }
trap stop_all EXIT
# start SERVER: a fresh server of that kind on $port, on a fresh Redis.
start() {
  start_redis
  case $1 in
    herald) start_herald "$HERALD" HERALD_REDIS_URL="redis://127.0.0.1:$redis_port" HERALD_REDIS_PREFIX= ;;
    laravel-echo-server)
      port=$(free_port)
      cat > "$OUT/laravel-echo-server.json" <<JSON
{"authHost": "http://127.0.0.1", "authEndpoint": "/broadcasting/auth", "clients": [], "database": "redis",
 "databaseConfig": {"redis": {"host": "127.0.0.1", "port": "$redis_port", "keyPrefix": ""}},
 "devMode": false, "host": "127.0.0.1", "port": "$port", "protocol": "http", "socketio": {},
 "subscribers": {"http": false, "redis": true}}
JSON
      rm -f "$OUT/laravel-echo-server.lock"
      (cd "$OUT" && exec node node_modules/laravel-echo-server/bin/server.js start >/dev/null 2>&1) & pid=$!
      for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/socket.io/?EIO=3&transport=polling" >/dev/null 2>&1 && break; sleep 0.1; done ;;
  esac
}

echo "| run | server | CPU per delivery (µs) | lost | latency p50 / p99 (ms) | memory per idle connection (KiB) |" > "$OUT/summary.md"
echo "|---|---|---|---|---|---|" >> "$OUT/summary.md"
for run in $(seq "$RUNS"); do
  for server in herald laravel-echo-server; do
    f="$OUT/fanout-$server-$run.json"
    start $server
    $LOAD --target 127.0.0.1:$port --server-pid $pid --protocol socketio2 --json "$f" fanout --subscribers "$SUBS" --channels 1 --rate "$RATE" --duration "$DURATION" --publish redis --redis-url "redis://127.0.0.1:$redis_port" --redis-prefix "" > /dev/null
    stop_all
    i="$OUT/idle-$server-$run.json"
    start $server
    $LOAD --target 127.0.0.1:$port --server-pid $pid --protocol socketio2 --json "$i" idle --connections "$IDLE" --kind public > /dev/null
    stop_all
    latency=$(python3 -c 'import json,sys; l=json.load(open(sys.argv[1]))["latency_ms"]; print("%.1f / %.1f" % (l["p50"], l["p99"]))' "$f")
    memory=$(python3 -c 'import json,sys; print(next(round(v, 1) for n, v, u in json.load(open(sys.argv[1]))["figures"] if n.startswith("server memory per connection")))' "$i")
    echo "| $run | $server | $(figure "$f" "server CPU per delivery") | $(figure "$f" "lost") | $latency | $memory |" >> "$OUT/summary.md"
  done
done
cat "$OUT/summary.md"
