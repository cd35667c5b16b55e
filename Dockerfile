# syntax=docker/dockerfile:1
# Herald: a Pusher-protocol WebSocket server. Two stages: build with the Rust toolchain, run on a slim Debian.
#   docker build -t herald .
#   docker run -p 6001:6001 -e HERALD_REDIS_URL=redis://redis:6379 herald

ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
WORKDIR /src
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

# 1. Dependencies only: the workspace manifests, the lock file and empty stand-ins for the crates' sources.
#    This layer is rebuilt only when a Cargo.toml or Cargo.lock changes, not on every source edit.
#    A new crate under crates/ needs its own line here.
COPY Cargo.toml Cargo.lock ./
COPY crates/herald-protocol/Cargo.toml crates/herald-protocol/Cargo.toml
COPY crates/herald-core/Cargo.toml crates/herald-core/Cargo.toml
COPY crates/herald-redis/Cargo.toml crates/herald-redis/Cargo.toml
COPY crates/herald-server/Cargo.toml crates/herald-server/Cargo.toml
# The load generator is a workspace member too: cargo reads its manifest (it is not built here).
COPY loadtest/Cargo.toml loadtest/Cargo.toml
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    set -eux; \
    for c in herald-protocol herald-core herald-redis herald-server; do \
        mkdir -p "crates/$c/src"; : > "crates/$c/src/lib.rs"; \
    done; \
    echo 'fn main() {}' > crates/herald-server/src/main.rs; \
    mkdir -p crates/herald-core/benches; \
    echo 'fn main() {}' > crates/herald-core/benches/hot_path.rs; \
    mkdir -p loadtest/src/bin; \
    echo 'fn main() {}' > loadtest/src/main.rs; \
    echo 'fn main() {}' > loadtest/src/bin/raw_fanout.rs; \
    cargo build --release -p herald-server; \
    rm -rf crates target/release/herald target/release/deps/herald* \
        target/release/.fingerprint/herald-* target/release/deps/libherald*

# 2. The real sources. COPY keeps the files' own mtimes, which may be older than the stand-ins: touch them so
#    cargo rebuilds the workspace crates. The lock file is copied again: step 1 may have pruned it.
COPY Cargo.toml Cargo.lock ./
COPY crates crates
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    set -eux; \
    find crates -type f -name '*.rs' -exec touch {} +; \
    cargo build --release --locked -p herald-server; \
    install -D -m 0755 target/release/herald /out/herald; \
    strip --strip-debug /out/herald; \
    /out/herald --version

FROM ${RUNTIME_IMAGE}
# ca-certificates follows Debian's security updates: not pinned.
# hadolint ignore=DL3008
RUN set -eux; \
    apt-get update; \
    apt-get install -y --no-install-recommends ca-certificates; \
    rm -rf /var/lib/apt/lists/*; \
    groupadd --system --gid 10001 herald; \
    useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin herald
COPY --from=build /out/herald /usr/local/bin/herald

ENV HERALD_HOST=0.0.0.0 \
    HERALD_PORT=6001 \
    HERALD_LOG_FORMAT=json \
    RUST_LOG=info
USER 10001:10001
EXPOSE 6001
STOPSIGNAL SIGTERM

# No curl in the slim image: bash's /dev/tcp asks /livez (on the metrics port when one is set).
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${HERALD_METRICS_PORT:-${HERALD_PORT:-6001}} && printf 'GET /livez HTTP/1.1\\r\\nHost: localhost\\r\\nConnection: close\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["/usr/local/bin/herald"]
