#!/usr/bin/env bash
# Two Herald builds on the HTTP API's per-message path and on one big presence channel, every figure on freshly
# started servers, the builds alternating run by run (default RUNS=5), with medians:
#   per message    server CPU per delivery and p50/p99: 5,000 subscribers on 5,000 channels, 2,000 signed HTTP
#                  API events/s, one delivery each; before, after and the raw reference (target/release/raw-fanout)
#   instructions   user-space instructions per HTTP API event, counted by valgrind's callgrind (500 subscribers on
#                  500 channels, 100 events/s, counted over 1,000 events): unlike CPU time on this shared
#                  two-core machine, the count does not move between runs. Valgrind hides SHA extensions, so the
#                  HMAC is counted in its portable form (about 28k instructions of each Herald event).
#                  And per delivery on one channel of 500 subscribers (10 events/s, counted over 50,000
#                  deliveries, the publishing request included).
#                  And per connection: 1,000 public connections opened, subscribed, idle 2 s and closed.
#   connect        server CPU per connection and memory per idle connection, 5,000 public connections opened
#                  and subscribed; before, after and raw
#   presence       two nodes on one fresh Redis, 2,000 users x 2 tabs joining ONE presence channel: joins/s
# Usage: scripts/bench-request-path.sh BEFORE_HERALD_BIN AFTER_HERALD_BIN   (results in target/bench-request-path/)
# Loopback only; every process it starts is stopped when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=${1:?path of the "before" herald binary}
AFTER=${2:?path of the "after" herald binary}
RUNS=${RUNS:-5}
OUT=target/bench-request-path
mkdir -p "$OUT"
command -v redis-server >/dev/null || { echo "bench-request-path: redis-server is needed (make test-deps installs it)" >&2; exit 1; }
command -v valgrind >/dev/null || { echo "bench-request-path: valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
cargo build --release -q -p loadtest
LOAD=target/release/herald-load
. scripts/lib/bench-common.sh
extra=()
cleanup() { stop; for p in "${extra[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; extra=(); }
trap cleanup EXIT
bin_of() { case $1 in before) echo "$BEFORE";; after) echo "$AFTER";; esac; }
latency() { python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["latency_ms"][sys.argv[2]], 2))' "$1" "$2"; }
median() { python3 -c 'import statistics,sys; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

echo "## per message: CPU per delivery (µs), p50 / p99 (ms)" > "$OUT/summary.md"
declare -A cpu
for run in $(seq "$RUNS"); do
  for build in before after raw; do
    if [ "$build" = raw ]; then start_raw; else start_herald "$(bin_of $build)"; fi
    f="$OUT/many-$build-$run.json"
    $LOAD --target 127.0.0.1:$port --server-pid $pid --json "$f" fanout --subscribers 5000 --channels 5000 --rate 2000 --duration 10 > /dev/null
    stop
    c=$(figure "$f" "server CPU per delivery"); cpu[$build]="${cpu[$build]:-} $c"
    echo "| $run | $build | $c | $(latency "$f" p50) / $(latency "$f" p99) |" >> "$OUT/summary.md"
  done
done
for build in before after raw; do echo "| median | $build | $(median ${cpu[$build]}) | |" >> "$OUT/summary.md"; done

# callgrind BUILD NAME PER LOAD_ARGS...: a fresh server under callgrind with herald-load's LOAD_ARGS running:
# for `fanout` (20 s), instructions counted from 8 s to 18 s; for `idle`, from before the first connection
# opens to 3 s after the last has closed. Divided by PER (what was delivered, published or connected meanwhile), left in $counted.
counted=0
callgrind() {
  local build=$1 name=$2 per=$3; shift 3
  port=$(free_port); probes=$(free_port); local out="$OUT/callgrind-$name-$build.out"; rm -f "$out"*
  if [ "$build" = raw ]; then
    valgrind --tool=callgrind --callgrind-out-file="$out" target/release/raw-fanout "127.0.0.1:$port" 2>/dev/null & pid=$!
    sleep 5
  else
    env HERALD_HOST=127.0.0.1 HERALD_PORT="$port" HERALD_METRICS_PORT="$probes" RUST_LOG=warn \
      valgrind --tool=callgrind --callgrind-out-file="$out" "$(bin_of $build)" 2>/dev/null & pid=$!
    wait_ready "$probes"
  fi
  if [ "$1" = idle ]; then
    callgrind_control -z "$pid" > /dev/null
    $LOAD --target 127.0.0.1:$port --json "$OUT/callgrind-$name-$build.json" "$@" > /dev/null 2>&1
    # The clients are gone: counted once the server has closed them too (a connection's whole life).
    sleep 3; callgrind_control -d "$pid" > /dev/null
  else
    $LOAD --target 127.0.0.1:$port --json "$OUT/callgrind-$name-$build.json" "$@" --duration 20 > /dev/null 2>&1 & extra+=("$!")
    # Connected and publishing well before 8 s.
    sleep 8; callgrind_control -z "$pid" > /dev/null
    sleep 10; callgrind_control -d "$pid" > /dev/null
    wait "${extra[@]}" 2>/dev/null || true; extra=()
  fi
  stop
  local ir; ir=$(grep -h '^totals:\|^summary:' "$out".* | head -1 | awk '{print $2}')
  counted=$((ir / per))
}
echo "## instructions per HTTP API event (callgrind; 500 channels, 100 events/s: 1,000 events)" >> "$OUT/summary.md"
for build in before after raw; do
  callgrind $build many 1000 fanout --subscribers 500 --channels 500 --rate 100
  echo "| $build | $counted instructions per event |" >> "$OUT/summary.md"
done
echo "## instructions per delivery, one channel (callgrind; 500 subscribers, 10 events/s: 50,000 deliveries)" >> "$OUT/summary.md"
for build in before after raw; do
  callgrind $build one 50000 fanout --subscribers 500 --channels 1 --rate 10
  echo "| $build | $counted instructions per delivery |" >> "$OUT/summary.md"
done

echo "## instructions per connection (callgrind; 1,000 public connections opened, subscribed and closed)" >> "$OUT/summary.md"
for build in before after raw; do
  callgrind $build connect 1000 idle --connections 1000 --kind public
  echo "| $build | $counted instructions per connection |" >> "$OUT/summary.md"
done

echo "## connect: server CPU per connection (µs), memory per idle connection (KiB); 5,000 public connections" >> "$OUT/summary.md"
declare -A conn mem
for run in $(seq "$RUNS"); do
  for build in before after raw; do
    if [ "$build" = raw ]; then start_raw; else start_herald "$(bin_of $build)"; fi
    f="$OUT/connect-$build-$run.json"
    $LOAD --target 127.0.0.1:$port --server-pid $pid --json "$f" idle --connections 5000 --kind public > /dev/null
    stop
    c=$(figure "$f" "server CPU per connection"); m=$(figure "$f" "server memory per connection")
    conn[$build]="${conn[$build]:-} $c"; mem[$build]="${mem[$build]:-} $m"
    echo "| $run | $build | $c | $m |" >> "$OUT/summary.md"
  done
done
for build in before after raw; do echo "| median | $build | $(median ${conn[$build]}) | $(median ${mem[$build]}) |" >> "$OUT/summary.md"; done

echo "## presence: 2 nodes, 2,000 users x 2 tabs on one channel: joins/s" >> "$OUT/summary.md"
printf '[[apps]]\nid = "app-id"\nkey = "app-key"\nsecret = "app-secret"\nmax_presence_members = 10000\n' > "$OUT/presence.toml"
declare -A joins
for run in $(seq "$RUNS"); do
  for build in before after; do
    redis=$(free_port)
    redis-server --port "$redis" --bind 127.0.0.1 --save '' --appendonly no > /dev/null & extra+=("$!")
    for _ in $(seq 50); do redis-cli -p "$redis" ping > /dev/null 2>&1 && break; sleep 0.1; done
    targets=(); pids=()
    for _ in 1 2; do
      p=$(free_port); probes=$(free_port)
      HERALD_CONFIG="$OUT/presence.toml" HERALD_HOST=127.0.0.1 HERALD_PORT=$p HERALD_METRICS_PORT=$probes \
        HERALD_REDIS_URL=redis://127.0.0.1:$redis RUST_LOG=warn "$(bin_of $build)" & extra+=("$!")
      wait_ready "$probes"
      targets+=(--target "127.0.0.1:$p"); pids+=(--server-pid "${extra[-1]}")
    done
    f="$OUT/presence-$build-$run.json"
    $LOAD "${targets[@]}" "${pids[@]}" --json "$f" presence --users 2000 --tabs 2 --channels 1 > /dev/null
    cleanup
    j=$(figure "$f" "joins per second (tabs)"); joins[$build]="${joins[$build]:-} $j"
    echo "| $run | $build | $j joins/s | announced twice: $(figure "$f" "users announced more than once") |" >> "$OUT/summary.md"
  done
done
for build in before after; do echo "| median | $build | $(median ${joins[$build]}) joins/s | |" >> "$OUT/summary.md"; done
cat "$OUT/summary.md"
