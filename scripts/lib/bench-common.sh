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

# Three servers on one fresh Redis (for the Redis scenarios): stop_cluster stops them and the Redis.
cluster=()
stop_cluster() { for p in "${cluster[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; cluster=(); }
trap 'stop; stop_cluster' EXIT

# start_three raw | start_three herald BIN: three raw forwarders or three Herald nodes on a fresh Redis; sets
# $targets and $cluster_pids (herald-load's --target and --server-pid arguments) and $redis_url.
start_three() {
  local kind=$1 bin=${2:-} redis_port; redis_port=$(free_port)
  redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no >/dev/null & cluster+=("$!")
  for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis_url=redis://127.0.0.1:$redis_port
  targets=(); cluster_pids=()
  for _ in 1 2 3; do
    local p; p=$(free_port)
    if [ "$kind" = raw ]; then
      target/release/raw-fanout "127.0.0.1:$p" --redis "$redis_url" laravel_database_ 2>/dev/null & cluster+=("$!")
      sleep 0.3
    else
      local probes; probes=$(free_port)
      HERALD_HOST=127.0.0.1 HERALD_PORT=$p HERALD_METRICS_PORT=$probes HERALD_REDIS_URL=$redis_url RUST_LOG=warn "$bin" & cluster+=("$!")
      wait_ready "$probes"
    fi
    targets+=(--target "127.0.0.1:$p"); cluster_pids+=(--server-pid "${cluster[-1]}")
  done
}

# latency JSON PERCENTILE: a herald-load result's latency percentile (p50, p99, p999) in ms, to two decimals.
latency() { python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["latency_ms"][sys.argv[2]], 2))' "$1" "$2"; }
