# Shared by the comparison benchmarks: start one server at a time on a free loopback port, stop it, read a
# figure from herald-load's JSON. Sourced, not run.
pid=""
port=""
stop() { if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi; pid=""; }
trap stop EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 100); do curl -fs "http://127.0.0.1:$1/readyz" >/dev/null 2>&1 && return 0; sleep 0.1; done; return 1; }
# start_herald BIN [VAR=value ...]: a fresh node on $port (probes on a plaintext port of their own).
start_herald() {
  local bin=$1; shift
  port=$(free_port); local probes; probes=$(free_port)
  env HERALD_HOST=127.0.0.1 HERALD_PORT="$port" HERALD_METRICS_PORT="$probes" RUST_LOG=warn "$@" "$bin" & pid=$!
  wait_ready "$probes"
}
start_raw() { port=$(free_port); target/release/raw-fanout "127.0.0.1:$port" 2>/dev/null & pid=$!; sleep 0.5; }
# figure JSON NAME: the named figure of a herald-load result, to one decimal.
figure() { python3 -c 'import json,sys; print(next(round(v, 1) for n, v, u in json.load(open(sys.argv[1]))["figures"] if n == sys.argv[2]))' "$1" "$2"; }
