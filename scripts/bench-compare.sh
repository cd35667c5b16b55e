#!/usr/bin/env bash
# Compares two Herald builds on the figures a refactor must not make worse, each measured on a freshly started
# server, next to the raw reference in the same run, RUNS times (default 3):
#   - server CPU per delivery: 5,000 subscribers on one channel, 20 HTTP API events/s (fanout);
#   - server memory per idle connection: 5,000 public, then 5,000 presence connections (idle); the raw
#     reference's for public connections.
# Usage: scripts/bench-compare.sh BEFORE_HERALD_BIN AFTER_HERALD_BIN   (results in target/bench-compare/)
# Loopback only; every process it starts is stopped when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE=${1:?path of the "before" herald binary}
AFTER=${2:?path of the "after" herald binary}
RUNS=${RUNS:-3}
SUBS=${BENCH_SUBSCRIBERS:-5000}
DURATION=${BENCH_DURATION:-10}
OUT=target/bench-compare
mkdir -p "$OUT"
cargo build --release -q -p loadtest
LOAD=target/release/herald-load
. scripts/lib/bench-common.sh

echo "| run | build | fanout CPU/delivery (µs) | idle public (KiB/conn) | idle presence (KiB/conn) |" > "$OUT/summary.md"
echo "|---|---|---|---|---|" >> "$OUT/summary.md"
for run in $(seq "$RUNS"); do
  for build in before after raw; do
    case $build in before) bin=$BEFORE;; after) bin=$AFTER;; esac
    f="$OUT/$build-$run"
    if [ "$build" = raw ]; then start_raw; else start_herald "$bin"; fi
    $LOAD --target 127.0.0.1:$port --server-pid $pid --json "$f-fanout.json" fanout --subscribers "$SUBS" --channels 1 --rate 20 --duration "$DURATION" > "$f-fanout.md"
    stop
    idle_pub=-; idle_pres=-
    if [ "$build" = raw ]; then
      start_raw
      $LOAD --target 127.0.0.1:$port --server-pid $pid --json "$f-idle-public.json" idle --connections "$SUBS" --kind public > "$f-idle-public.md"
      stop
      idle_pub=$(figure "$f-idle-public.json" "server memory per connection")
    else
      start_herald "$bin"
      $LOAD --target 127.0.0.1:$port --server-pid $pid --json "$f-idle-public.json" idle --connections "$SUBS" --kind public > "$f-idle-public.md"
      stop
      start_herald "$bin"
      $LOAD --target 127.0.0.1:$port --server-pid $pid --json "$f-idle-presence.json" idle --connections "$SUBS" --kind presence > "$f-idle-presence.md"
      stop
      idle_pub=$(figure "$f-idle-public.json" "server memory per connection")
      idle_pres=$(figure "$f-idle-presence.json" "server memory per connection")
    fi
    echo "| $run | $build | $(figure "$f-fanout.json" "server CPU per delivery") | $idle_pub | $idle_pres |" >> "$OUT/summary.md"
  done
done
cat "$OUT/summary.md"
