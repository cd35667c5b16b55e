#!/usr/bin/env bash
# What the debug dashboard costs: server CPU per delivery (5,000 subscribers on one channel, 20 HTTP API
# events/s) on a freshly started node with the dashboard on but nobody watching, with one console watching
# the app (an SSE reader, as the page or `herald tail` is), and on the raw reference, RUNS times (default 3).
# The watching run's console carries every broadcast and the 5,000 connections' entries (capped at 50 a
# second after a burst of 200). Results in target/bench-dashboard/. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SUBS=${BENCH_SUBSCRIBERS:-5000}
DURATION=${BENCH_DURATION:-10}
OUT=target/bench-dashboard
TOKEN=bench-dashboard-token-0123456789
mkdir -p "$OUT"
cargo build --release -q -p herald-server -p loadtest
LOAD=target/release/herald-load
HERALD=target/release/herald
. scripts/lib/bench-common.sh
watcher=""
stop_watcher() { if [ -n "$watcher" ]; then kill "$watcher" 2>/dev/null || true; wait "$watcher" 2>/dev/null || true; fi; watcher=""; }
trap 'stop_watcher; stop' EXIT

echo "| run | server | CPU per delivery (µs) | lost | console entries read |" > "$OUT/summary.md"
echo "|---|---|---|---|---|" >> "$OUT/summary.md"
for run in $(seq "$RUNS"); do
  for mode in unwatched watching raw; do
    entries=-
    case $mode in
      raw) start_raw ;;
      *) start_herald "$HERALD" HERALD_DASHBOARD_TOKEN=$TOKEN ;;
    esac
    if [ "$mode" = watching ]; then
      curl -sN -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$port/herald/dashboard/api/apps/app-id/console" > "$OUT/console-$run.txt" &
      watcher=$!
      sleep 1.5 # the node sees the watcher on its next once-a-second look
    fi
    f="$OUT/$mode-$run.json"
    $LOAD --target 127.0.0.1:$port --server-pid $pid --json "$f" fanout --subscribers "$SUBS" --channels 1 --rate 20 --duration "$DURATION" > /dev/null
    if [ "$mode" = watching ]; then
      stop_watcher
      entries=$(grep -c '^data: ' "$OUT/console-$run.txt" || true)
    fi
    stop
    echo "| $run | $mode | $(figure "$f" "server CPU per delivery") | $(figure "$f" "lost") | $entries |" >> "$OUT/summary.md"
  done
done
cat "$OUT/summary.md"
