#!/usr/bin/env bash
# Controller at scale against a local control plane and the simulator:
# time to converge N new MappedDomains on Closte and to reach `done` (DNS and
# TLS checked every 10 s, certificates issued 5 s after registration), Closte
# list calls, DNS/TLS checks run, and the controller's RSS. Release build.
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
  --write-rate-limit "$rate" --dns-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 \
  --issue-delay 5s --ca-out "$dir/ca.pem" >"$dir/sim.ready" 2>"$dir/sim.log" &
sim=$!
for _ in $(seq 100); do [[ -s "$dir/sim.ready" ]] && break; sleep 0.1; done
api=$(sed -E 's/.*"api":"([^"]+)".*/\1/' "$dir/sim.ready")
dns=$(sed -E 's/.*"dns":"([^"]+)".*/\1/' "$dir/sim.ready")
https_port=$(sed -E 's/.*"https":"[^"]*:([0-9]+)".*/\1/' "$dir/sim.ready")
metrics_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
admin=${api%/api/client}/_sim
for i in $(seq "$n"); do
  printf -- '---\napiVersion: closte-operator.io/v1alpha1\nkind: MappedDomain\nmetadata: {name: b%s, namespace: default}\nspec: {domain: "b%s.bench.example", checkInterval: 10s}\n' "$i" "$i"
done >"$dir/objects.yaml"
CLOSTE_CLIENT_API_KEY=bench "$bin" controller --closte-api-url "$api" --closte-write-rate "$rate" \
  --dns-server "$dns" --https-port "$https_port" --ca-file "$dir/ca.pem" --expected-target 127.0.0.1 \
  --metrics-addr "127.0.0.1:$metrics_port" --leader-elect=false >"$dir/controller.log" 2>&1 &
ctl=$!
start=$(date +%s.%N)
kubectl apply --server-side -f "$dir/objects.yaml" >/dev/null
applied=$(date +%s.%N)
until [[ $(curl -s "$admin/stats" | sed -E 's/.*"aliases":([0-9]+).*/\1/') -ge $n ]]; do sleep 0.2; done
on_closte=$(date +%s.%N)
metric() { curl -s "http://127.0.0.1:$metrics_port/metrics" | awk -v m="$1" 'index($0, m) == 1 { s += $NF } END { print s + 0 }'; }
until [[ $(metric 'closte_operator_mapped_domains{stage="done"}') -ge $n ]]; do sleep 0.5; done
done_at=$(date +%s.%N)
echo "objects: $n, simulator: 50 ms latency, $rate writes/s"
echo "apply took: $(echo "$applied - $start" | bc) s"
echo "all aliases on the simulator after: $(echo "$on_closte - $start" | bc) s (rate bound: $(echo "scale=1; $n / $rate" | bc) s)"
echo "all done (DNS + certificate) after: $(echo "$done_at - $start" | bc) s"
echo "DNS/TLS checks run: $(metric 'closte_operator_checks_total')"
echo "getdomains calls: $(curl -s "$admin/stats" | sed -E 's/.*"getdomains":([0-9]+).*/\1/')"
echo "controller RSS: $(awk '/VmRSS/ {printf "%.1f MiB", $2/1024}' /proc/$ctl/status)"
