#!/usr/bin/env bash
# Renders the plain manifests in deploy/ from the Helm chart (so the two never
# drift; a test renders them again and compares):
#   deploy/render.sh [OUT_DIR]      default: deploy/
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
out=${1:-deploy}
helm=$(bash tests/tools/helm.sh)
header() { printf '# Rendered from charts/closte-operator by deploy/render.sh; do not edit.\n# %s\n' "$1"; }
{
  header "The controller in namespace closte-system, its key from the Secret closte-api-key (key apiKey)."
  "$helm" template closte-operator charts/closte-operator --namespace closte-system --kube-version 1.33.0 \
    --set closte.existingSecret=closte-api-key
} >"$out/closte-operator.yaml"
{
  header "The WordPress sidecar's identity, quota, admission policy (and the mu-plugin) for namespace wordpress; change \"wordpress\" to yours (also in the policy's user name)."
  "$helm" template closte-operator charts/closte-operator --namespace closte-system --kube-version 1.33.0 \
    --set "sidecar.namespaces={wordpress}" --show-only templates/sidecar.yaml --show-only templates/admission.yaml
} >"$out/wordpress-sidecar.yaml"
