#!/usr/bin/env bash
# helm, built once from the Go module proxy and cached by version:
#   tests/tools/helm.sh        prints the path of the helm binary (building it first if needed)
set -euo pipefail
version=v3.22.0
dir=${CLOSTE_OPERATOR_CACHE:-$HOME/.cache/closte-operator}/helm-$version
if [[ ! -x "$dir/helm" ]]; then
  command -v go >/dev/null || { echo "helm.sh: Go is needed to build helm" >&2; exit 1; }
  echo "helm.sh: building helm $version into $dir (first time only; a few minutes)" >&2
  mkdir -p "$dir.tmp.$$"
  (cd "$dir.tmp.$$" && GOBIN="$PWD" CGO_ENABLED=0 GOFLAGS=-buildvcs=false go install -trimpath helm.sh/helm/v3/cmd/helm@$version) ||
    { rm -rf "$dir.tmp.$$"; echo "helm.sh: go install failed; the Go module proxy must be reachable" >&2; exit 1; }
  rm -rf "$dir"; mv "$dir.tmp.$$" "$dir"
fi
echo "$dir/helm"
