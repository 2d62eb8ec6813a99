#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ (nightly + cargo-fuzz, installed by `make setup`).
#
#   scripts/fuzz.sh                  each target for FUZZ_SECONDS (default 60) on its corpus
#                                    fuzz/corpus/<target> (kept, gitignored), seeded from
#                                    fuzz/seeds/<target> (committed, written by the tests)
#   FUZZ_RUNS=N scripts/fuzz.sh      each target for exactly N inputs with a fixed seed, on a
#                                    fresh corpus from the seeds only: repeatable (make test)
#   FUZZ_TARGETS="beacon pipeline"   only these targets
#
# A crash stops the run with the target's name; libFuzzer leaves the input under
# fuzz/artifacts/<target>/ (reproduce: cargo +nightly fuzz run <target> <file>).
# Under CI=true a missing toolchain is an error; elsewhere the run is skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/.."

# The fuzz crate is built with the nightly toolchain and sanitizer flags: its own target dir.
export CARGO_TARGET_DIR="$PWD/fuzz/target"

missing=""
rustup run nightly rustc --version >/dev/null 2>&1 || missing="the nightly toolchain"
cargo fuzz --version >/dev/null 2>&1 || missing="${missing:+$missing and }cargo-fuzz"
if [ -n "$missing" ]; then
  if [ "${CI:-}" = true ]; then
    echo "fuzz: error: $missing missing (make setup installs them)" >&2; exit 1
  fi
  echo "fuzz: skipped: $missing missing (make setup installs them)" >&2; exit 0
fi

targets=${FUZZ_TARGETS:-$(cargo +nightly fuzz list --fuzz-dir fuzz)}
echo "== fuzz: build ($(echo $targets | wc -w) targets)"
# One build of the crate makes every target (cargo fuzz build takes one target or all).
if ! out=$(nice cargo +nightly fuzz build -O --fuzz-dir fuzz 2>&1); then
  echo "$out" | tail -60 >&2; echo "fuzz: error: the build failed" >&2; exit 1
fi

work=$(mktemp -d /tmp/acm-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
for t in $targets; do
  seeds=fuzz/seeds/$t
  [ -d "$seeds" ] || { echo "fuzz: error: no seeds for $t ($seeds)" >&2; exit 1; }
  if [ -n "${FUZZ_RUNS:-}" ]; then
    corpus=$work/$t
    limit=(-runs="$FUZZ_RUNS" -seed=1)
  else
    corpus=fuzz/corpus/$t
    limit=(-max_total_time="${FUZZ_SECONDS:-60}")
  fi
  mkdir -p "$corpus" "fuzz/artifacts/$t"
  log=$work/$t.log
  start=$(date +%s%N)
  if ! nice cargo +nightly fuzz run -O --fuzz-dir fuzz "$t" "$corpus" "$seeds" -- \
      "${limit[@]}" -max_len=4096 -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="fuzz/artifacts/$t/" >"$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz: $t FAILED (input under fuzz/artifacts/$t/)" >&2
    exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo '?')
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  printf 'fuzz: %-18s ok: %8s inputs, coverage %5s edges, %d.%03d s\n' "$t" "$runs" "$cov" $((ms / 1000)) $((ms % 1000))
done
