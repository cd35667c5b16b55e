#!/usr/bin/env bash
# One of bench-vs-raw's scenarios many times over, Herald and the raw reference in pairs, to tell whether a
# ratio target is met when the host moves single runs by more than the target's margin. Each pair starts both
# servers fresh, one after the other, the order alternating from pair to pair (so drift in the host's speed
# falls on both alike); the ratio herald / raw is taken within each pair. Reported: every pair, the median
# ratio, a distribution-free confidence interval for it (order statistics of the pairs' ratios; no
# assumption about the noise's shape), and the verdict against the target: met when the whole interval is
# at or under it, not met when the whole interval is over it, open otherwise (more pairs would narrow it).
#   SCENARIO=one      CPU per delivery, 5,000 subscribers on one channel, 20 HTTP API events/s (target 1.02)
#   SCENARIO=many     CPU per delivery (target 1.1) and p99 (target 1.2), 5,000 subscribers on 5,000 channels,
#                     2,000 events/s
#   SCENARIO=connect  server CPU per connection, 5,000 public connections (target 1.1), and each server's
#                     memory per idle connection
#   SCENARIO=redis    p99 Laravel -> browser through Redis, 3 nodes, 3,000 subscribers, 500 events/s on 100
#                     channels (target 1.2)
# Usage: SCENARIO=one PAIRS=11 scripts/bench-paired.sh [HERALD_BIN]   (BENCH_DURATION seconds per run,
# default 10; results in target/bench-paired/SCENARIO.md and each run's JSON). Loopback only; every process
# it starts is stopped when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
SCENARIO=${SCENARIO:-one}
PAIRS=${PAIRS:-11}
DURATION=${BENCH_DURATION:-10}
OUT=target/bench-paired
mkdir -p "$OUT"
cargo build --release -q -p herald-server -p loadtest
BIN=${1:-target/release/herald}
LOAD=target/release/herald-load
. scripts/lib/bench-common.sh

case "$SCENARIO" in
  one) FIGURES=("server CPU per delivery:1.02"); SHAPE=(fanout --subscribers 5000 --channels 1 --rate 20 --duration "$DURATION") ;;
  many) FIGURES=("server CPU per delivery:1.1" "p99:1.2"); SHAPE=(fanout --subscribers 5000 --channels 5000 --rate 2000 --duration "$DURATION") ;;
  connect) FIGURES=("server CPU per connection:1.1"); SHAPE=(idle --connections 5000 --kind public) ;;
  redis) FIGURES=("p99:1.2")
    command -v redis-server >/dev/null || { echo "bench-paired: redis-server is needed (make test-deps installs it)" >&2; exit 1; }
    SHAPE=(fanout --subscribers 3000 --channels 100 --rate 500 --duration "$DURATION" --publish redis) ;;
  *) echo "bench-paired: SCENARIO is one, many, connect or redis (got $SCENARIO)" >&2; exit 2 ;;
esac

# run SERVER JSON: one measurement on freshly started servers.
run() {
  if [ "$SCENARIO" = redis ]; then
    start_three "$1" "$BIN"
    $LOAD "${targets[@]}" "${cluster_pids[@]}" --json "$2" "${SHAPE[@]}" --redis-url "$redis_url" > /dev/null
    stop_cluster
  else
    if [ "$1" = raw ]; then start_raw; else start_herald "$BIN"; fi
    $LOAD --target "127.0.0.1:$port" --server-pid "$pid" --json "$2" "${SHAPE[@]}" > /dev/null
    stop
  fi
}

for pair in $(seq "$PAIRS"); do
  if [ $((pair % 2)) = 1 ]; then order=(herald raw); else order=(raw herald); fi
  for server in "${order[@]}"; do run "$server" "$OUT/$SCENARIO-$pair-$server.json"; done
  echo "bench-paired: $SCENARIO pair $pair of $PAIRS done" >&2
done

python3 - "$OUT" "$SCENARIO" "$PAIRS" "$BIN" "${FIGURES[@]}" > "$OUT/$SCENARIO.md" <<'PY'
import json, math, re, statistics, sys
out, scenario, pairs, binary, figures = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5:]

def is_percentile(name):
    return re.fullmatch(r'p\d+', name) is not None

def value(path, name):
    doc = json.load(open(path))
    if is_percentile(name):
        return doc['latency_ms'][name]
    return next(v for n, v, _ in doc['figures'] if n == name)

def interval(n, level=0.95):
    """The widest k with P(Binomial(n, 1/2) < k) <= (1 - level) / 2: [r(k), r(n-k+1)] covers the median."""
    k, below = 0, 0.0
    while True:
        nxt = below + math.comb(n, k) / 2 ** n
        if nxt > (1 - level) / 2:
            break
        below, k = nxt, k + 1
    return k, 1 - 2 * below

print(f'{scenario}: {pairs} pairs, {binary} next to raw-fanout, each run on freshly started servers\n')
for spec in figures:
    name, target = spec.rsplit(':', 1)
    target = float(target)
    rows = []
    for p in range(1, pairs + 1):
        h = value(f'{out}/{scenario}-{p}-herald.json', name)
        r = value(f'{out}/{scenario}-{p}-raw.json', name)
        rows.append((p, h, r, h / r))
    unit = 'ms' if is_percentile(name) else 'µs'
    print(f'| pair | first | herald {name} ({unit}) | raw ({unit}) | herald / raw |')
    print('|---|---|---|---|---|')
    for p, h, r, q in rows:
        print(f'| {p} | {"herald" if p % 2 else "raw"} | {h:.2f} | {r:.2f} | {q:.3f} |')
    ratios = sorted(q for *_, q in rows)
    k, coverage = interval(len(ratios))
    median = statistics.median(ratios)
    if k == 0:
        span, verdict = 'no 95% interval from so few pairs', 'open (too few pairs)'
    else:
        low, high = ratios[k - 1], ratios[len(ratios) - k]
        span = f'{coverage:.1%} interval {low:.3f}-{high:.3f}'
        verdict = 'met' if high <= target else 'not met' if low > target else 'open'
    under = sum(q <= target for q in ratios)
    print(f'\n{name}: median ratio {median:.3f}, {span}, '
          f'{under} of {len(ratios)} pairs at or under {target}; target <= {target}: **{verdict}**; '
          f'each server\'s own median: herald {statistics.median(h for _, h, _, _ in rows):.2f}, raw {statistics.median(r for _, _, r, _ in rows):.2f} {unit}\n')
if scenario == 'connect':
    # Memory per idle connection has an absolute target (4 KiB), not a ratio: each server's median and range.
    for server in ('herald', 'raw'):
        kib = sorted(value(f'{out}/{scenario}-{p}-{server}.json', 'server memory per connection') for p in range(1, pairs + 1))
        print(f'{server} memory per idle connection: median {statistics.median(kib):.2f} KiB ({kib[0]:.2f}-{kib[-1]:.2f})')
PY
cat "$OUT/$SCENARIO.md"
