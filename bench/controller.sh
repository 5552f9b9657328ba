#!/usr/bin/env bash
# Controller at scale against a local control plane and the simulator:
# time to converge N new MappedDomains, Closte list calls, and the
# controller's RSS once settled. Release build.
#   bench/controller.sh [objects] [write-rate]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=${1:-1000}
rate=${2:-50}
cargo build --release -q
bin=$PWD/target/release/closte-operator
dir=$PWD/target/bench-controller
rm -rf "$dir"; mkdir -p "$dir"
cleanup() {
  kill "${ctl:-}" "${sim:-}" 2>/dev/null || true
  bash tests/controlplane/controlplane.sh down "$dir/cp" >/dev/null 2>&1 || true
}
trap cleanup EXIT
bash tests/controlplane/controlplane.sh up "$dir/cp" >/dev/null
export KUBECONFIG=$dir/cp/kubeconfig
"$bin" crd | kubectl apply -f - >/dev/null
kubectl wait --for=condition=Established crd/mappeddomains.closte-operator.io >/dev/null
CLOSTE_CLIENT_API_KEY=bench "$bin" simulate --listen 127.0.0.1:0 --latency 50ms \
  --write-rate-limit "$rate" >"$dir/sim.ready" 2>"$dir/sim.log" &
sim=$!
for _ in $(seq 100); do [[ -s "$dir/sim.ready" ]] && break; sleep 0.1; done
api=$(sed -E 's/.*"api":"([^"]+)".*/\1/' "$dir/sim.ready")
admin=${api%/api/client}/_sim
for i in $(seq "$n"); do
  printf -- '---\napiVersion: closte-operator.io/v1alpha1\nkind: MappedDomain\nmetadata: {name: b%s, namespace: default}\nspec: {domain: "b%s.bench.example"}\n' "$i" "$i"
done >"$dir/objects.yaml"
CLOSTE_CLIENT_API_KEY=bench "$bin" controller --closte-api-url "$api" --closte-write-rate "$rate" \
  --metrics-addr 127.0.0.1:0 --leader-elect=false >"$dir/controller.log" 2>&1 &
ctl=$!
start=$(date +%s.%N)
kubectl apply --server-side -f "$dir/objects.yaml" >/dev/null
applied=$(date +%s.%N)
until [[ $(curl -s "$admin/stats" | sed -E 's/.*"aliases":([0-9]+).*/\1/') -ge $n ]]; do sleep 0.2; done
done_at=$(date +%s.%N)
sleep 5 # let status writes settle before reading memory
echo "objects: $n, simulator: 50 ms latency, $rate writes/s"
echo "apply took: $(echo "$applied - $start" | bc) s"
echo "converged (all aliases on the simulator) after: $(echo "$done_at - $start" | bc) s (rate bound: $(echo "scale=1; $n / $rate" | bc) s)"
echo "getdomains calls: $(curl -s "$admin/stats" | sed -E 's/.*"getdomains":([0-9]+).*/\1/')"
echo "controller RSS: $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$ctl/status)"
