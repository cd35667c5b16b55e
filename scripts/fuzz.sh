#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) for a bounded time from the committed corpus (fuzz/corpus/).
# Usage: scripts/fuzz.sh [seconds per target, default 30]. New interesting inputs land in
# fuzz/target/new-corpus/<target> (not committed; copy the useful ones into fuzz/corpus/). A crash stops the
# run with libFuzzer's report and the input saved under fuzz/artifacts/<target>/.
#
# cargo-fuzz needs nightly-only compiler flags; this machine has one stable toolchain, so the run sets
# RUSTC_BOOTSTRAP=1 and builds without a sanitizer (-s none): the targets are safe Rust, and debug
# assertions (overflow checks) stay on.
set -euo pipefail
SECS="${1:-30}"
cd "$(dirname "$0")/../fuzz"
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
cargo fuzz build -s none
for target in $(cargo fuzz list); do
  mkdir -p "target/new-corpus/$target" "corpus/$target"
  log="target/fuzz-$target.log"
  echo "== fuzz $target for ${SECS}s"
  if ! cargo fuzz run -s none "$target" "target/new-corpus/$target" "corpus/$target" -- \
      -max_total_time="$SECS" -max_len=8192 -rss_limit_mb=2048 -print_final_stats=1 >"$log" 2>&1; then
    tail -60 "$log" >&2
    echo "fuzz target $target failed: the input is under fuzz/artifacts/$target" >&2
    exit 1
  fi
  grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb|stat::new_units_added)' "$log" || true
  grep -E 'INFO: seed corpus|DONE' "$log" | tail -2 || true
done
