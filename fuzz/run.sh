#!/usr/bin/env bash
# Builds gamegate's cargo fuzz targets and runs each for FUZZ_SECONDS (default 30) from its
# committed seeds (fuzz/corpus/<target>/); fails on the first crash, failed property, timeout
# or out-of-memory, whose input is left in fuzz/artifacts/<target>/.
#
#   bash fuzz/run.sh                          # every target, 30 s each
#   FUZZ_SECONDS=600 bash fuzz/run.sh request # one target, longer
#
# Installs cargo-fuzz (pinned) if it is missing. The inputs a run finds go to a scratch
# directory, so the committed seeds never change; see fuzz/README.md to add one.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
# cargo fuzz passes flags that only a nightly rustc takes; the machine has the stable toolchain.
export RUSTC_BOOTSTRAP=1

if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  cargo install --locked cargo-fuzz --version "$CARGO_FUZZ_VERSION"
fi

# Debug assertions, so that integer overflow panics; no sanitizer: gamegate forbids unsafe code,
# and without one a build is faster and every second runs about twice as many inputs.
build_flags=(--sanitizer none --debug-assertions)
# Per input: 10 s before it counts as a hang; 2 GiB of memory at the most.
libfuzzer_flags=(-max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1)

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

# The lock file of this crate is committed, as gamegate's is; cargo fuzz has no --locked.
if ! cargo metadata --manifest-path fuzz/Cargo.toml --locked --format-version 1 >/dev/null; then
  echo "fuzz/Cargo.lock is out of date (gamegate's dependencies changed?); refresh it from" \
    "gamegate's: cp Cargo.lock fuzz/Cargo.lock && cargo metadata --manifest-path fuzz/Cargo.toml" \
    "--format-version 1 >/dev/null, then commit it"
  exit 1
fi

started=$SECONDS
cargo fuzz build "${build_flags[@]}"
echo "built in $((SECONDS - started)) s"

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target"
  log="$scratch/$target.log"
  # libFuzzer writes new inputs to the first corpus directory: the scratch one.
  if ! cargo fuzz run "${build_flags[@]}" "$target" "$scratch/$target" "fuzz/corpus/$target" \
    -- "${libfuzzer_flags[@]}" >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz target $target failed; the input is in fuzz/artifacts/$target/"
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  seeds=$(find "fuzz/corpus/$target" -type f | wc -l)
  coverage=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1)
  echo "$target: $runs inputs in $FUZZ_SECONDS s from $seeds seeds, $coverage, no crash"
done
echo "fuzzing passed in $((SECONDS - started)) s"
