#!/usr/bin/env bash
# socket.io clients (Echo's socket.io broadcaster) next to pusher-js clients on the same Herald: server CPU
# per delivery and latency with 5,000 subscribers on one channel at 20 HTTP API events/s, and memory per idle
# connection, each server freshly started, RUNS times (default 3). Results in target/bench-socketio/.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SUBS=${BENCH_SUBSCRIBERS:-5000}
DURATION=${BENCH_DURATION:-10}
IDLE=${BENCH_IDLE:-5000}
OUT=target/bench-socketio
mkdir -p "$OUT"
cargo build --release -q -p herald-server -p loadtest
LOAD=target/release/herald-load
HERALD=target/release/herald
. scripts/lib/bench-common.sh

echo "| run | clients | CPU per delivery (µs) | lost | latency p50 / p99 (ms) | memory per idle connection (KiB) |" > "$OUT/summary.md"
echo "|---|---|---|---|---|---|" >> "$OUT/summary.md"
for run in $(seq "$RUNS"); do
  for protocol in pusher socketio; do
    f="$OUT/fanout-$protocol-$run.json"
    start_herald "$HERALD"
    $LOAD --target 127.0.0.1:$port --server-pid $pid --protocol $protocol --json "$f" fanout --subscribers "$SUBS" --channels 1 --rate 20 --duration "$DURATION" > /dev/null
    stop
    i="$OUT/idle-$protocol-$run.json"
    start_herald "$HERALD"
    $LOAD --target 127.0.0.1:$port --server-pid $pid --protocol $protocol --json "$i" idle --connections "$IDLE" --kind public > /dev/null
    stop
    latency=$(python3 -c 'import json,sys; l=json.load(open(sys.argv[1]))["latency_ms"]; print("%.1f / %.1f" % (l["p50"], l["p99"]))' "$f")
    memory=$(python3 -c 'import json,sys; print(next(round(v, 1) for n, v, u in json.load(open(sys.argv[1]))["figures"] if n.startswith("server memory per connection")))' "$i")
    echo "| $run | $protocol | $(figure "$f" "server CPU per delivery") | $(figure "$f" "lost") | $latency | $memory |" >> "$OUT/summary.md"
  done
done
cat "$OUT/summary.md"
