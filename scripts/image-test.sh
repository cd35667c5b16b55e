#!/usr/bin/env bash
# Builds the Dockerfile and runs the compose stack for real, with Podman (no Docker engine and no image
# registry here): base images are made locally from Debian's packages, the Herald image is built from the
# Dockerfile as a user would build it, and docker-compose.yml is started with podman-compose (Redis, three
# Herald nodes, HAProxy). Then: the image runs as uid 10001, its HEALTHCHECK passes, pusher-js (Echo)
# connects through the stack's load balancer and receives an event that Laravel's RedisBroadcaster publishes
# to the stack's Redis, and `down` leaves nothing running.
#
# Usage: scripts/image-test.sh   (make image-test; part of make test). Needs root (apt, rootful Podman).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
WORK=$ROOT/target/image-test
mkdir -p "$WORK"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo

# --- Podman, as tooling.md says it runs here: runc, cgroupfs, no default ulimits; dnsname for service names.
need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v debootstrap >/dev/null || need+=(debootstrap)
[ -e /usr/lib/cni/dnsname ] || need+=(golang-github-containernetworking-plugin-dnsname)
if [ ${#need[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if [ ! -f /etc/containers/containers.conf ]; then
  $SUDO mkdir -p /etc/containers
  printf '[containers]\ndefault_ulimits = []\n[engine]\ncgroup_manager = "cgroupfs"\nruntime = "runc"\n' \
    | $SUDO tee /etc/containers/containers.conf >/dev/null
fi
command -v podman-compose >/dev/null || pip install -q podman-compose
PODMAN=(podman --runtime runc)

# --- Base images, made locally: Debian bookworm (debootstrap), a build image with this machine's Rust
# toolchain, and stand-ins for the compose file's redis and haproxy images.
mirror=$(grep -h '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1 | awk '{print $2}')
mirror=${mirror:-http://deb.debian.org/debian}
if ! "${PODMAN[@]}" image exists localhost/herald-test/debian:bookworm-slim; then
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$mirror" >"$WORK/debootstrap.log" 2>&1
  tar -C "$WORK/rootfs" -c . | "${PODMAN[@]}" import - localhost/herald-test/debian:bookworm-slim >/dev/null
  rm -rf "$WORK/rootfs"
fi
build_image() { # name, Containerfile text, context dir
  local name=$1 text=$2 ctx=${3:-$WORK/empty}
  mkdir -p "$ctx"
  if ! "${PODMAN[@]}" image exists "$name"; then
    printf '%s\n' "$text" >"$WORK/Containerfile.tmp"
    "${PODMAN[@]}" build --format docker --network host -q -t "$name" -f "$WORK/Containerfile.tmp" "$ctx" >/dev/null
  fi
}
toolchain=$(rustc --print sysroot)
if ! "${PODMAN[@]}" image exists localhost/herald-test/rust:bookworm; then
  rm -rf "$WORK/rust-ctx"; mkdir -p "$WORK/rust-ctx/rust"
  tar -C "$toolchain" --exclude=share/doc -c . | tar -C "$WORK/rust-ctx/rust" -x
  # This machine reaches the package registries through a proxy whose CA only the host trusts: the build
  # image gets the host's CA bundle, so cargo inside the build fetches crates as cargo outside does.
  cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$WORK/rust-ctx/host-ca.crt"
  build_image localhost/herald-test/rust:bookworm "FROM localhost/herald-test/debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates && rm -rf /var/lib/apt/lists/*
COPY host-ca.crt /etc/ssl/certs/ca-certificates.crt
COPY rust /usr/local/rust
ENV PATH=/usr/local/rust/bin:/usr/local/cargo/bin:/usr/sbin:/usr/bin:/sbin:/bin CARGO_HOME=/usr/local/cargo CARGO_HTTP_CAINFO=/etc/ssl/certs/ca-certificates.crt" "$WORK/rust-ctx"
  rm -rf "$WORK/rust-ctx"
fi
# Like the official image: any redis-server command listens on every interface without protected mode
# (the compose file's command gives neither).
build_image localhost/herald-test/redis:stack2 "FROM localhost/herald-test/debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends redis-server redis-tools && rm -rf /var/lib/apt/lists/*
ENTRYPOINT [\"sh\", \"-c\", \"if [ \\\"\$1\\\" = redis-server ]; then exec \\\"\$@\\\" --bind 0.0.0.0 --protected-mode no; else exec \\\"\$@\\\"; fi\", \"--\"]
CMD [\"redis-server\"]"
# -n: the compose file's maxconn needs 200,000 descriptors; this machine allows 20,000 per process.
build_image localhost/herald-test/haproxy:stack2 "FROM localhost/herald-test/debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends haproxy && rm -rf /var/lib/apt/lists/*
CMD [\"haproxy\", \"-f\", \"/usr/local/etc/haproxy/haproxy.cfg\", \"-db\", \"-n\", \"8000\"]"

# --- The Herald image, from the Dockerfile as it is.
echo "== building the Herald image from the Dockerfile"
"${PODMAN[@]}" build --format docker --network host -t localhost/herald:local \
  --build-arg RUST_IMAGE=localhost/herald-test/rust:bookworm \
  --build-arg RUNTIME_IMAGE=localhost/herald-test/debian:bookworm-slim . >"$WORK/build.log" 2>&1 \
  || { tail -40 "$WORK/build.log"; exit 1; }
user=$("${PODMAN[@]}" image inspect localhost/herald:local --format '{{.Config.User}}')
[ "$user" = "10001:10001" ] || { echo "the image runs as $user, not 10001:10001" >&2; exit 1; }

# --- The compose stack: the real docker-compose.yml, with the local images and the stack's Redis published
# on a free port for Laravel; open-file limits within this machine's 20,000 per process, and an explicit
# process limit (with any ulimit given, runc here cannot set the default one: EPERM on RLIMIT_NPROC).
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
redis_port=$(free_port)
lb_port=$(free_port)
cat >"$WORK/compose.override.yml" <<EOF
services:
  redis:
    image: localhost/herald-test/redis:stack2
    ports: ["127.0.0.1:${redis_port}:6379"]
  # Podman runs healthchecks only when asked (no systemd timers here): the nodes wait for Redis to start,
  # and this script runs the healthchecks itself.
  herald-1: &node
    image: localhost/herald:local
    ulimits: {nofile: {soft: 16384, hard: 16384}, nproc: 4096}
    depends_on: {redis: {condition: service_started}}
  herald-2: *node
  herald-3: *node
  lb:
    image: localhost/herald-test/haproxy:stack2
    ulimits: {nofile: {soft: 16384, hard: 16384}, nproc: 4096}
EOF
stats_port=$(free_port)
export HERALD_PUBLIC_PORT=$lb_port HAPROXY_STATS_PORT=$stats_port
compose=(podman-compose -p herald-image-test -f docker-compose.yml -f "$WORK/compose.override.yml")
down() { "${compose[@]}" down -t 5 >/dev/null 2>&1 || true; }
trap down EXIT
down
echo "== starting the compose stack (Redis, three nodes, HAProxy on port ${lb_port})"
"${compose[@]}" up -d --no-build redis herald-1 herald-2 herald-3 lb >"$WORK/up.log" 2>&1 \
  || { tail -40 "$WORK/up.log"; exit 1; }
for i in $(seq 1 60); do
  healthy=0
  for n in 1 2 3; do
    if "${PODMAN[@]}" healthcheck run "herald-image-test_herald-${n}_1" >/dev/null 2>&1; then healthy=$((healthy + 1)); fi
  done
  [ "$healthy" -eq 3 ] && break
  sleep 1
done
[ "$healthy" -eq 3 ] || { "${compose[@]}" logs >"$WORK/logs.txt" 2>&1; tail -60 "$WORK/logs.txt"; echo "healthchecks: $healthy of 3 pass" >&2; exit 1; }
uid=$("${PODMAN[@]}" exec herald-image-test_herald-1_1 id -u)
[ "$uid" = "10001" ] || { echo "the node runs as uid $uid" >&2; exit 1; }
echo "== three nodes healthy, running as uid $uid; Echo through the load balancer"
(cd tests && node image/echo_through_stack.mjs "$lb_port" "$redis_port")
down
trap - EXIT
left=$("${PODMAN[@]}" ps -a --filter label=io.podman.compose.project=herald-image-test -q | wc -l)
[ "$left" -eq 0 ] || { echo "$left containers left after down" >&2; exit 1; }
echo "== image and compose stack: ok (nothing left running)"
