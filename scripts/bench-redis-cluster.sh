#!/usr/bin/env bash
# Deliveries per second across three Herald nodes on one Redis, then on a three-shard Redis Cluster (three
# primaries, no replicas), every server started fresh for each run: herald-load saturate with SUBS subscribers
# spread over the three nodes and CHANNELS channels, 32 HTTP API publishes in flight through node 1 (on Redis
# Cluster it SPUBLISHes each event to the shard that owns the channel's slot). RUNS rounds, the two setups
# alternating; prints one line per run and writes the JSON under target/bench/. Loopback only.
# With a Herald binary from before a change as the first argument, each round also measures it on one Redis
# (`single-before`), next to the current build.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SUBS=${SUBS:-3000}
CHANNELS=${CHANNELS:-1000}
DURATION=${DURATION:-10}
OUT=target/bench
mkdir -p "$OUT"
cargo build --release -q -p herald-server -p loadtest
BIN=target/release
BEFORE=${1:-}
# shellcheck source=scripts/lib/bench-common.sh
source scripts/lib/bench-common.sh
pids=()
dir=$(mktemp -d)
# Herald first, then Redis (in reverse order of start), so the nodes retire cleanly.
cleanup() {
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill "${pids[$i]}" 2>/dev/null || true; wait "${pids[$i]}" 2>/dev/null || true; done
  pids=()
}
trap 'cleanup; rm -rf "$dir"' EXIT
# A port below 55000 whose cluster bus port (+10000) is free too.
cluster_port() { python3 -c '
import random, socket
def free(p):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", p)); return True
    except OSError:
        return False
    finally:
        s.close()
while True:
    p = random.randint(20000, 29999)
    if free(p) and free(p + 10000):
        print(p); break'; }
redis_args() { echo --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" --maxclients 2000; }

start_single() {
  local p; p=$(free_port)
  # shellcheck disable=SC2046
  redis-server --port "$p" $(redis_args) >/dev/null & pids+=("$!")
  until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.1; done
  url="redis://127.0.0.1:$p"
}
start_cluster() {
  local ports=() p
  for _ in 1 2 3; do
    p=$(cluster_port); ports+=("$p")
    # shellcheck disable=SC2046
    redis-server --port "$p" $(redis_args) --cluster-enabled yes --cluster-config-file "nodes-$p.conf" >/dev/null & pids+=("$!")
  done
  for p in "${ports[@]}"; do until redis-cli -p "$p" ping >/dev/null 2>&1; do sleep 0.1; done; done
  redis-cli --cluster create "${ports[@]/#/127.0.0.1:}" --cluster-replicas 0 --cluster-yes >/dev/null
  for p in "${ports[@]}"; do until redis-cli -p "$p" cluster info | grep -q cluster_state:ok; do sleep 0.2; done; done
  url="redis+cluster://127.0.0.1:${ports[0]},127.0.0.1:${ports[1]},127.0.0.1:${ports[2]}"
}
nodes=()
# start_nodes [BINARY]: three nodes of the current build (or BINARY) on $url.
start_nodes() {
  local herald=${1:-$BIN/herald}
  nodes=(); local node_pids=()
  for _ in 1 2 3; do
    local p probes; p=$(free_port); probes=$(free_port)
    HERALD_HOST=127.0.0.1 HERALD_PORT="$p" HERALD_METRICS_PORT="$probes" HERALD_REDIS_URL="$url" RUST_LOG=warn \
      "$herald" & pids+=("$!"); node_pids+=("$!")
    wait_ready "$probes"
    nodes+=("--target" "127.0.0.1:$p" "--server-pid" "${node_pids[-1]}")
  done
}
measure() {
  local name=$1 json="$OUT/redis-$1-run$2.json"
  "$BIN/herald-load" "${nodes[@]}" --json "$json" saturate --subscribers "$SUBS" --channels "$CHANNELS" \
    --in-flight 32 --duration "$DURATION" >/dev/null
  printf '%-13s run %s: %s deliveries/s, %s µs server CPU per delivery (3 nodes), lost %s\n' "$name" "$2" \
    "$(figure "$json" 'deliveries per second')" "$(figure "$json" 'server CPU per delivery')" "$(figure "$json" lost)"
}

echo "$SUBS subscribers over $CHANNELS channels on 3 nodes, 32 publishes in flight, ${DURATION} s; $(nproc) cores"
for run in $(seq "$RUNS"); do
  if [ -n "$BEFORE" ]; then start_single; start_nodes "$BEFORE"; measure single-before "$run"; cleanup; fi
  start_single; start_nodes; measure single "$run"; cleanup
  start_cluster; start_nodes; measure cluster "$run"; cleanup
done
