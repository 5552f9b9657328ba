#!/usr/bin/env bash
# cargo-fuzz, installed once from crates.io and cached by version:
#   tests/tools/cargo-fuzz.sh     prints the folder holding cargo-fuzz (installing it first if needed)
set -euo pipefail
version=0.13.2
dir=${CLOSTE_OPERATOR_CACHE:-$HOME/.cache/closte-operator}/cargo-fuzz-$version
if [[ ! -x "$dir/bin/cargo-fuzz" ]]; then
  echo "cargo-fuzz.sh: installing cargo-fuzz $version into $dir (first time only; about a minute)" >&2
  rm -rf "$dir.tmp.$$"
  # cargo-fuzz itself builds on stable; its own build output stays out of the project's target dirs
  CARGO_TARGET_DIR="$dir.tmp.$$/target" cargo install -q --locked cargo-fuzz --version "$version" --root "$dir.tmp.$$" ||
    { rm -rf "$dir.tmp.$$"; echo "cargo-fuzz.sh: cargo install failed; crates.io must be reachable" >&2; exit 1; }
  rm -rf "$dir.tmp.$$/target" "$dir"; mv "$dir.tmp.$$" "$dir"
fi
echo "$dir/bin"
