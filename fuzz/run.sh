#!/usr/bin/env bash
# Runs the fuzz targets one at a time, SECONDS each, and prints a table:
# target, seconds, executions, corpus size, crashes.
#   fuzz/run.sh SECONDS [TARGET...]      (default: every target)
# Needs a nightly toolchain (`cargo +nightly`); cargo-fuzz comes from
# tests/tools/cargo-fuzz.sh. The corpus grows in fuzz/corpus/TARGET (not
# committed), seeded from fuzz/seeds/TARGET (committed, with every input a
# crash was once found on); crashes land in fuzz/artifacts/TARGET. Exits
# non-zero when a target crashed, after running the others.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
seconds=${1:?usage: fuzz/run.sh SECONDS [TARGET...]}
shift
targets=("$@")
((${#targets[@]})) || targets=(domain_normalise closte_decode sidecar_request duration_parse)

cargo +nightly --version >/dev/null 2>&1 || {
  echo "fuzz/run.sh: the fuzz targets need a nightly toolchain: rustup toolchain install nightly" >&2
  exit 1
}
PATH="$(bash ../tests/tools/cargo-fuzz.sh):$PATH"
cache=${CLOSTE_OPERATOR_CACHE:-$HOME/.cache/closte-operator}
# Its own target dir: the instrumented nightly build would otherwise evict the
# stable one. No sanitizer: the code is safe Rust, and libFuzzer catches
# panics, overflow and debug assertions without one (and runs faster).
build=(-s none --codegen-units 16 --target-dir "${FUZZ_TARGET_DIR:-$cache/fuzz-target}")
echo "fuzz/run.sh: building the fuzz targets (nightly, instrumented)" >&2
cargo +nightly fuzz build "${build[@]}"

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
row() { printf '%-18s %8s %12s %8s %8s\n' "$@"; }
table=$(row target seconds execs corpus crashes)
failed=()
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  echo "fuzz/run.sh: $target for ${seconds}s" >&2
  started=$SECONDS
  status=0
  cargo +nightly fuzz run "${build[@]}" "$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$logs/$target" 2>&1 || status=$?
  took=$((SECONDS - started))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target" | tail -1)
  corpus=$(find "corpus/$target" -type f | wc -l)
  crashes=$(grep -c 'Test unit written to' "$logs/$target" || true)
  if ((status != 0)); then
    failed+=("$target")
    echo "== $target FAILED (exit $status); its output ends:" >&2
    tail -40 "$logs/$target" >&2
  fi
  table+=$'\n'$(row "$target" "$took" "${execs:-?}" "$corpus" "$crashes")
done
echo "$table"
if ((${#failed[@]})); then
  echo "fuzz/run.sh: crashed: ${failed[*]}; reproduce with: cargo +nightly fuzz run ${build[*]} TARGET fuzz/artifacts/TARGET/FILE" >&2
  exit 1
fi
