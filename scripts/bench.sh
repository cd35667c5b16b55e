#!/usr/bin/env bash
# `make bench`: the standard benchmark set. Builds release binaries, starts Herald (embedded, and a two-node
# cluster on a private Redis for presence) and the raw fan-out reference, runs each scenario against both
# where it applies, and writes Markdown, JSON and SVG results under target/bench/. Loopback only.
# Scale with BENCH_SUBSCRIBERS (default 5000), BENCH_DURATION (seconds, default 15), BENCH_IDLE (10000).
set -euo pipefail
cd "$(dirname "$0")/.."
SUBS=${BENCH_SUBSCRIBERS:-5000}
DURATION=${BENCH_DURATION:-15}
IDLE=${BENCH_IDLE:-10000}
OUT=target/bench
mkdir -p "$OUT"
cargo build --release -q -p herald-server -p loadtest
BIN=target/release
pids=()
cleanup() { for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; sleep 0.2; done; wait 2>/dev/null || true; }
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 100); do curl -fs "http://127.0.0.1:$1$2" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "no answer on :$1$2" >&2; return 1; }

HP=$(free_port); RP=$(free_port)
HERALD_HOST=127.0.0.1 HERALD_PORT=$HP RUST_LOG=warn $BIN/herald & HPID=$!; pids+=("$HPID")
$BIN/raw-fanout "127.0.0.1:$RP" 2>/dev/null & RPID=$!; pids+=("$RPID")
wait_http "$HP" /readyz; sleep 0.5

load() { local name=$1; shift; echo "== $name" >&2; $BIN/herald-load "$@" --json "$OUT/$name.json" --svg "$OUT/$name.svg" | tee "$OUT/$name.md"; }

load fanout-1ch-herald --target 127.0.0.1:$HP --server-pid $HPID fanout --subscribers "$SUBS" --channels 1 --rate 20 --duration "$DURATION"
load fanout-1ch-raw --target 127.0.0.1:$RP --server-pid $RPID fanout --subscribers "$SUBS" --channels 1 --rate 20 --duration "$DURATION"
load fanout-many-herald --target 127.0.0.1:$HP --server-pid $HPID fanout --subscribers "$SUBS" --channels "$SUBS" --rate 2000 --duration "$DURATION"
load saturate-herald --target 127.0.0.1:$HP --server-pid $HPID saturate --subscribers "$SUBS" --channels 1 --in-flight 32 --duration "$DURATION"
load saturate-raw --target 127.0.0.1:$RP --server-pid $RPID saturate --subscribers "$SUBS" --channels 1 --in-flight 32 --duration "$DURATION"
load idle-public-herald --target 127.0.0.1:$HP --server-pid $HPID idle --connections "$IDLE" --kind public
load idle-presence-herald --target 127.0.0.1:$HP --server-pid $HPID idle --connections "$IDLE" --kind presence

# Presence across two nodes on one Redis.
if command -v redis-server >/dev/null; then
  REDIS=$(free_port)
  redis-server --port "$REDIS" --bind 127.0.0.1 --save '' --appendonly no >/dev/null & pids+=("$!")
  sleep 0.5
  N1=$(free_port); N2=$(free_port)
  # 2,000 users on one presence channel: above Pusher's default limit of 100 members.
  printf '[[apps]]\nid = "app-id"\nkey = "app-key"\nsecret = "app-secret"\nmax_presence_members = 10000\n' > "$OUT/cluster.toml"
  export HERALD_CONFIG=$OUT/cluster.toml
  HERALD_HOST=127.0.0.1 HERALD_PORT=$N1 HERALD_REDIS_URL=redis://127.0.0.1:$REDIS RUST_LOG=warn $BIN/herald & P1=$!; pids+=("$P1")
  HERALD_HOST=127.0.0.1 HERALD_PORT=$N2 HERALD_REDIS_URL=redis://127.0.0.1:$REDIS RUST_LOG=warn $BIN/herald & P2=$!; pids+=("$P2")
  unset HERALD_CONFIG
  wait_http "$N1" /readyz; wait_http "$N2" /readyz
  load presence-cluster --target 127.0.0.1:$N1 --target 127.0.0.1:$N2 --server-pid $P1 --server-pid $P2 presence --users 2000 --tabs 2 --channels 100
  load presence-one-channel --target 127.0.0.1:$N1 --target 127.0.0.1:$N2 --server-pid $P1 --server-pid $P2 presence --users 2000 --tabs 2 --channels 1
  load fanout-cluster-redis --target 127.0.0.1:$N1 --target 127.0.0.1:$N2 --server-pid $P1 --server-pid $P2 fanout --subscribers "$SUBS" --channels 1 --rate 20 --duration "$DURATION" --publish redis --redis-url redis://127.0.0.1:$REDIS
fi
# CPU per delivery over wss:// next to ws:// (fresh servers, one run; RUNS=3 ./scripts/bench-wss.sh for the spread),
# with nothing else running.
cleanup; pids=()
RUNS=${BENCH_WSS_RUNS:-1} ./scripts/bench-wss.sh >&2
# What the debug dashboard costs: nobody watching, one console watching (RUNS=3 for the spread).
RUNS=${BENCH_DASHBOARD_RUNS:-1} ./scripts/bench-dashboard.sh >&2
# socket.io clients (Echo's socket.io broadcaster) next to pusher-js clients: CPU per delivery, memory per idle
# connection (RUNS=3 for the spread).
RUNS=${BENCH_SOCKETIO_RUNS:-1} ./scripts/bench-socketio.sh >&2
# Herald next to the raw reference on fresh servers: one channel, the per-message path, connect, idle memory,
# and Laravel-to-browser latency through Redis across three nodes (RUNS=5 for the medians of docs/benchmarks.md).
RUNS=${BENCH_VS_RAW_RUNS:-1} ./scripts/bench-vs-raw.sh >&2
echo "results in $OUT/, target/bench-wss/, target/bench-dashboard/, target/bench-socketio/ and target/bench-vs-raw/" >&2
