# The two commands of the README: `make run` starts one node (embedded default, nothing else needed);
# `make test` installs what the tests need and runs them all.

HERALD_PORT ?= 6001
CARGO ?= cargo

.PHONY: run build test test-deps unit e2e deploy-check k6 fuzz soak soak-short image-test bench lint clean

run:
	$(CARGO) build --release -p herald-server
	@./target/release/herald print-config --laravel
	./target/release/herald

build:
	$(CARGO) build -p herald-server

test: test-deps unit e2e k6 deploy-check fuzz soak-short image-test

test-deps:
	./scripts/install-test-deps.sh

unit:
	$(CARGO) test --workspace

e2e: build
	cd tests && node --test --test-concurrency=1 e2e/

k6: build
	bash loadtest/k6/run-ci.sh

bench:
	./scripts/bench.sh

deploy-check:
	./scripts/validate-deploy.sh

# Every parser a client, Laravel or an API caller reaches, fuzzed from the committed corpus (FUZZ_SECS each).
FUZZ_SECS ?= 20
fuzz:
	./scripts/fuzz.sh $(FUZZ_SECS)

# A mixed workload with a node and a Redis restart, printing RSS, descriptors, Redis keys and p99 over time:
# an hour on the release build for the record (docs/benchmarks.md), two minutes in make test.
SOAK_SECS ?= 3600
soak:
	$(CARGO) build --release
	cd tests && HERALD_BIN=../target/release/herald SOAK_SECS=$(SOAK_SECS) node soak/soak.mjs

soak-short: build
	cd tests && SOAK_SECS=120 SOAK_REPORT_SECS=20 node soak/soak.mjs

# The Dockerfile built and docker-compose.yml run for real with Podman (base images made locally).
image-test:
	./scripts/image-test.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

clean:
	$(CARGO) clean
