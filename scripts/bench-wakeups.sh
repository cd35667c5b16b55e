#!/usr/bin/env bash
# Where a server's CPU goes on the HTTP API's per-message path, per event: context switches, futex calls,
# eventfd writes and epoll waits (perf stat's software counters and syscall tracepoints), and user and
# kernel CPU time (/proc), on freshly started servers, the given Herald builds and the raw reference
# alternating run by run (default RUNS=3).
# Load: 5,000 subscribers on 5,000 channels, 2,000 signed HTTP API events/s, one delivery each; counted over
# 5 s (10,000 events) once every client is connected and publishing has run for 2 s.
# SCENARIO=one: 5,000 subscribers on one channel, 20 events/s; counted per delivery (500,000 in the 5 s).
# Usage: [SCENARIO=one] scripts/bench-wakeups.sh HERALD_BIN [HERALD_BIN ...]   (results in target/bench-wakeups/)
# Needs perf (Debian's linux-perf) with access to syscall tracepoints (run as root, or
# kernel.perf_event_paranoid <= -1). Loopback only; every process it starts is stopped when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 HERALD_BIN [HERALD_BIN ...]" >&2; exit 2; }
RUNS=${RUNS:-3}
OUT=target/bench-wakeups
mkdir -p "$OUT"
command -v perf >/dev/null || { echo "bench-wakeups: perf is needed (apt-get install linux-perf)" >&2; exit 1; }
cargo build --release -q -p loadtest
LOAD=target/release/herald-load
. scripts/lib/bench-common.sh
load=""
cleanup() { stop; if [ -n "$load" ]; then kill "$load" 2>/dev/null || true; wait "$load" 2>/dev/null || true; fi; load=""; }
trap cleanup EXIT
if [ "${SCENARIO:-many}" = one ]; then
  EVENTS=500000; UNIT=delivery; UNITS=deliveries; SHAPE=(--subscribers 5000 --channels 1 --rate 20)
else
  EVENTS=10000; UNIT=event; UNITS=events; SHAPE=(--subscribers 5000 --channels 5000 --rate 2000)
fi
counters=context-switches,syscalls:sys_enter_futex,syscalls:sys_enter_write,syscalls:sys_enter_epoll_wait
jiffies() { awk '{print $14, $15}' "/proc/$1/stat"; }
echo "| run | server | context switches | futex | write (eventfd) | epoll_wait | user CPU (µs) | kernel CPU (µs) |" > "$OUT/summary.md"
echo "|---|---|---|---|---|---|---|---|" >> "$OUT/summary.md"
for run in $(seq "$RUNS"); do
  for server in "$@" raw; do
    if [ "$server" = raw ]; then start_raw; else start_herald "$server"; fi
    $LOAD --target 127.0.0.1:$port --json "$OUT/load.json" fanout "${SHAPE[@]}" --duration 14 > /dev/null 2>&1 & load=$!
    # Connected well before 5 s (the connect phase takes about 1 s here), publishing from then on.
    sleep 7
    read -r u1 s1 < <(jiffies "$pid")
    perf stat -x, -e "$counters" -p "$pid" -o "$OUT/perf.csv" -- sleep 5
    read -r u2 s2 < <(jiffies "$pid")
    wait "$load"; load=""
    stop
    python3 - "$OUT/perf.csv" "$run" "$(basename "$server")" "$u1" "$u2" "$s1" "$s2" "$EVENTS" "$(getconf CLK_TCK)" >> "$OUT/summary.md" <<'EOF'
import sys
csv, run, name, u1, u2, s1, s2, events, hz = sys.argv[1:]
events, hz = int(events), int(hz)
count = {}
for line in open(csv):
    parts = line.strip().split(",")
    if len(parts) > 2 and parts[0].replace(".", "").isdigit():
        count[parts[2]] = float(parts[0])
per = lambda name: f"{count.get(name, 0) / events:.2f}"
cpu = lambda a, b: f"{(int(b) - int(a)) / hz * 1e6 / events:.1f}"
print(f"| {run} | {name} | {per('context-switches')} | {per('syscalls:sys_enter_futex')} | "
      f"{per('syscalls:sys_enter_write')} | {per('syscalls:sys_enter_epoll_wait')} | {cpu(u1, u2)} | {cpu(s1, s2)} |")
EOF
  done
done
echo "(per $UNIT: each count divided by the $EVENTS $UNITS of the 5 s window)" >> "$OUT/summary.md"
cat "$OUT/summary.md"
