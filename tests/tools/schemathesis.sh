#!/usr/bin/env bash
# schemathesis (tests/sidecar_schema.rs), installed once from PyPI into a
# virtualenv cached by its pinned requirements and the Python version:
#   tests/tools/schemathesis.sh install   installs it when missing; prints the program's path
#   tests/tools/schemathesis.sh path      prints where the program is (installed or not)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
requirements=$here/schemathesis-requirements.txt
version=$(sed -n 's/^schemathesis==//p' "$requirements")
python=$(python3 -c 'import sys; print("py%d.%d" % sys.version_info[:2])')
hash=$(sha256sum "$requirements" | cut -c1-12)
dir=${CLOSTE_OPERATOR_CACHE:-$HOME/.cache/closte-operator}/schemathesis-$version-$python-$hash
case ${1:-path} in
path) ;;
install)
  # a virtualenv cannot move (its scripts name its own path): built in place,
  # and marked complete only when pip has finished
  if [[ ! -f "$dir/complete" ]]; then
    python3 -c 'import venv, ensurepip' 2>/dev/null || {
      echo "schemathesis.sh: python3 has no venv module; apt-get install -y python3-venv" >&2
      exit 1
    }
    echo "schemathesis.sh: installing schemathesis $version into $dir (first time only)" >&2
    rm -rf "$dir"
    python3 -m venv "$dir"
    "$dir/bin/pip" install -q --disable-pip-version-check -r "$requirements" ||
      { rm -rf "$dir"; echo "schemathesis.sh: pip install failed; PyPI must be reachable" >&2; exit 1; }
    touch "$dir/complete"
  fi
  ;;
*)
  echo "usage: tests/tools/schemathesis.sh install|path" >&2
  exit 2
  ;;
esac
echo "$dir/bin/schemathesis"
