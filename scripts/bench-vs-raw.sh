#!/usr/bin/env bash
# Herald next to the raw reference (target/release/raw-fanout: no logic, one write per frame), every figure on
# freshly started servers, both in the same run, RUNS times (default 5), with the median of each column:
#   one channel    CPU per delivery, 5,000 subscribers on one channel, 20 HTTP API events/s
#   per message    CPU per delivery and p50/p99 latency, 5,000 subscribers on 5,000 channels, 2,000 events/s
#   connect        server CPU per connection and memory per idle connection, 5,000 public connections
#   redis 3 nodes  Laravel -> browser latency (p50/p99/p999): events PUBLISHed to Redis in Laravel's
#                  RedisBroadcaster format at 500/s on 100 channels, 3,000 subscribers spread over three
#                  Herald nodes on one Redis, next to three raw-fanout processes forwarding from that Redis
# Usage: RUNS=5 scripts/bench-vs-raw.sh [HERALD_BIN]   (results in target/bench-vs-raw/: summary.md, and each
# run's JSON and SVG charts). Loopback only; every
# process it starts is stopped when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
DURATION=${BENCH_DURATION:-10}
OUT=target/bench-vs-raw
mkdir -p "$OUT"
command -v redis-server >/dev/null || { echo "bench-vs-raw: redis-server is needed (make test-deps installs it)" >&2; exit 1; }
cargo build --release -q -p herald-server -p loadtest
BIN=${1:-target/release/herald}
LOAD=target/release/herald-load
. scripts/lib/bench-common.sh

echo "| run | server | one channel: CPU/delivery (µs) | per message: CPU/delivery (µs) | per message p50 / p99 (ms) | connect: CPU/connection (µs) | idle KiB/connection | redis 3 nodes p50 / p99 / p999 (ms) |" > "$OUT/summary.md"
echo "|---|---|---|---|---|---|---|---|" >> "$OUT/summary.md"
for run in $(seq "$RUNS"); do
  for server in herald raw; do
    f="$OUT/$server-$run"
    start() { if [ "$server" = raw ]; then start_raw; else start_herald "$BIN"; fi; }
    start
    $LOAD --target 127.0.0.1:$port --server-pid $pid --json "$f-one.json" fanout --subscribers 5000 --channels 1 --rate 20 --duration "$DURATION" > /dev/null
    stop; start
    $LOAD --target 127.0.0.1:$port --server-pid $pid --json "$f-many.json" --svg "$f-many.svg" fanout --subscribers 5000 --channels 5000 --rate 2000 --duration "$DURATION" > /dev/null
    stop; start
    $LOAD --target 127.0.0.1:$port --server-pid $pid --json "$f-idle.json" idle --connections 5000 --kind public > /dev/null
    stop
    start_three "$server" "$BIN"
    $LOAD "${targets[@]}" "${cluster_pids[@]}" --json "$f-redis.json" --svg "$f-redis.svg" fanout --subscribers 3000 --channels 100 --rate 500 --duration "$DURATION" --publish redis --redis-url "$redis_url" > /dev/null
    stop_cluster
    echo "| $run | $server | $(figure "$f-one.json" "server CPU per delivery") | $(figure "$f-many.json" "server CPU per delivery") | $(latency "$f-many.json" p50) / $(latency "$f-many.json" p99) | $(figure "$f-idle.json" "server CPU per connection") | $(figure "$f-idle.json" "server memory per connection") | $(latency "$f-redis.json" p50) / $(latency "$f-redis.json" p99) / $(latency "$f-redis.json" p999) |" >> "$OUT/summary.md"
  done
done
# Medians per server, column by column.
python3 - "$OUT/summary.md" >> "$OUT/summary.md" <<'PY'
import statistics, sys
rows = [l.strip().strip('|').split('|') for l in open(sys.argv[1]) if l.startswith('| ') and not l.startswith('| run')]
for server in ('herald', 'raw'):
    mine = [[c.strip() for c in r] for r in rows if r[1].strip() == server]
    cells = []
    for col in range(2, len(mine[0])):
        parts = [[float(x) for x in r[col].split('/')] for r in mine]
        cells.append(' / '.join(f'{statistics.median(p[i] for p in parts):g}' for i in range(len(parts[0]))))
    print(f"| median | {server} | " + ' | '.join(cells) + ' |')
PY
cat "$OUT/summary.md"
