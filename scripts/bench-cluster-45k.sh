#!/usr/bin/env bash
# The large cluster run of docs/benchmarks.md: three nodes on one Redis, 45,000 subscribers held by three
# load-generator worker processes (one source address each, 15,000 sockets per process), a Laravel-format
# publish through Redis once a second; reports lost and duplicated deliveries. Loopback only; about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q -p herald-server -p loadtest
trap 'pkill -f "release/herald$" || true; kill ${RP:-} 2>/dev/null || true' EXIT
ulimit -n 20000
BIN=target/release
REDIS=18379; N1=18101; N2=18102; N3=18103
redis-server --port $REDIS --bind 127.0.0.1 --save '' --appendonly no --maxclients 1000 >/dev/null & RP=$!
sleep 0.5
for p in $N1 $N2 $N3; do HERALD_HOST=0.0.0.0 HERALD_PORT=$p HERALD_REDIS_URL=redis://127.0.0.1:$REDIS HERALD_MAX_OUTBOUND_QUEUE=4096 RUST_LOG=warn $BIN/herald & done
sleep 2
PIDS=$(pgrep -f "release/herald$" | sed 's/^/--server-pid /' | tr '\n' ' ')
$BIN/herald-load --target 127.0.0.1:$N1 --target 127.0.0.1:$N2 --target 127.0.0.1:$N3 $PIDS --sources 127.0.0.2,127.0.0.3,127.0.0.4 --connect-concurrency 48 fanout --subscribers 45000 --workers 3 --channels 1 --rate 1 --duration 10 --publish redis --redis-url redis://127.0.0.1:$REDIS
