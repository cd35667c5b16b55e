#!/usr/bin/env bash
# Server CPU per delivery over wss:// next to ws:// (and the raw reference, which speaks ws:// only): 5,000
# subscribers on one channel, 20 events/s through the HTTP API (https:// for the wss:// run), each server
# freshly started, RUNS times (default 3). A throwaway CA is made with openssl. Results in target/bench-wss/.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
SUBS=${BENCH_SUBSCRIBERS:-5000}
DURATION=${BENCH_DURATION:-10}
OUT=target/bench-wss
mkdir -p "$OUT/pki"
cargo build --release -q -p herald-server -p loadtest
LOAD=target/release/herald-load
HERALD=target/release/herald
. scripts/lib/bench-common.sh

(
  cd "$OUT/pki"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-ca -keyout ca.key -out ca.pem 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' > server.ext
  openssl req -newkey rsa:2048 -nodes -subj /CN=bench -keyout server.key -out server.csr 2>/dev/null
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 -extfile server.ext -out server.pem 2>/dev/null
)

echo "| run | server | CPU per delivery (µs) | lost | latency p99 (ms) |" > "$OUT/summary.md"
echo "|---|---|---|---|---|" >> "$OUT/summary.md"
for run in $(seq "$RUNS"); do
  for mode in ws wss raw; do
    tls=()
    case $mode in
      ws) start_herald "$HERALD" ;;
      wss) start_herald "$HERALD" HERALD_TLS_CERT_FILE="$OUT/pki/server.pem" HERALD_TLS_KEY_FILE="$OUT/pki/server.key"
           tls=(--tls-ca "$OUT/pki/ca.pem") ;;
      raw) start_raw ;;
    esac
    f="$OUT/$mode-$run.json"
    $LOAD --target 127.0.0.1:$port --server-pid $pid "${tls[@]}" --json "$f" fanout --subscribers "$SUBS" --channels 1 --rate 20 --duration "$DURATION" > /dev/null
    stop
    p99=$(python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["latency_ms"]["p99"], 1))' "$f")
    echo "| $run | $mode | $(figure "$f" "server CPU per delivery") | $(figure "$f" "lost") | $p99 |" >> "$OUT/summary.md"
  done
done
cat "$OUT/summary.md"
