# Shared by the benchmarks: a release build, a local control plane with the
# CRD, the simulator and the controller, and readings of a process. Source it
# from the repository root after setting `name`.
set -euo pipefail

if [[ -z "${BIN:-}" ]]; then
  cargo build --release -q
  target=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  BIN=$target/release/closte-operator
fi
dir=$PWD/target/bench-$name
rm -rf "$dir"; mkdir -p "$dir"
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  bash tests/controlplane/controlplane.sh down "$dir/cp" >/dev/null 2>&1 || true
}
trap cleanup EXIT
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# A control plane with the CRD, its write path warmed up.
bench_cluster() {
  bash tests/controlplane/controlplane.sh up "$dir/cp" >/dev/null
  export KUBECONFIG=$dir/cp/kubeconfig
  "$BIN" crd | kubectl apply -f - >/dev/null
  kubectl wait --for=condition=Established crd/mappeddomains.closte-operator.io >/dev/null
  # the API server prepares a new CRD's write path on the first write (about 2 s): not ours to time
  printf 'apiVersion: closte-operator.io/v1alpha1\nkind: MappedDomain\nmetadata: {name: warm-up, namespace: default}\nspec: {domain: warm-up.example}\n' |
    kubectl create -f - >/dev/null
  kubectl delete mappeddomain warm-up >/dev/null # no controller yet: no finalizer holds it
}

# The simulator (key "bench") at 50 ms latency and RATE writes/s, with DNS and
# HTTPS issuing certificates 5 s after registration. Sets api, dns,
# https_port and admin.
bench_simulator() { # RATE
  CLOSTE_CLIENT_API_KEY=bench "$BIN" simulate --listen 127.0.0.1:0 --latency 50ms \
    --write-rate-limit "$1" --dns-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 \
    --issue-delay 5s --ca-out "$dir/ca.pem" >"$dir/sim.ready" 2>"$dir/sim.log" &
  pids+=($!)
  for _ in $(seq 100); do [[ -s "$dir/sim.ready" ]] && break; sleep 0.1; done
  api=$(sim_field api)
  dns=$(sim_field dns)
  https_port=$(sim_field https | sed -E 's/.*:([0-9]+)$/\1/')
  admin=${api%/api/client}/_sim
}
sim_field() { sed -E "s/.*\"$1\":\"([^\"]+)\".*/\\1/" "$dir/sim.ready"; }
sim_stat() { curl -s "$admin/stats" | sed -E "s/.*\"$1\":([0-9]+).*/\\1/"; }

# The controller against the simulator, at RATE writes/s, run by the given
# wrapper (e.g. heaptrack) if any; sets ctl and metrics_port, waits until ready.
bench_controller() { # RATE [WRAPPER...]
  local rate=$1; shift
  metrics_port=$(free_port)
  CLOSTE_CLIENT_API_KEY=bench "$@" "$BIN" controller --closte-api-url "$api" --closte-write-rate "$rate" \
    --dns-server "$dns" --https-port "$https_port" --ca-file "$dir/ca.pem" --expected-target 127.0.0.1 \
    --metrics-addr "127.0.0.1:$metrics_port" --leader-elect=false >"$dir/controller.log" 2>&1 &
  ctl=$!
  pids+=("$ctl")
  wait_ready "http://127.0.0.1:$metrics_port/readyz" "$ctl" "$dir/controller.log"
}
metric() { curl -s "http://127.0.0.1:$metrics_port/metrics" | awk -v m="$1" 'index($0, m) == 1 { s += $NF } END { print s + 0 }'; }

wait_ready() { # URL PID LOG
  until curl -sf "$1" >/dev/null; do
    kill -0 "$2" 2>/dev/null || { cat "$3"; exit 1; }
    sleep 0.1
  done
}

# A snapshot of a process's memory (status, smaps, smaps_rollup) under PREFIX.
snapshot() { # PID PREFIX
  cp "/proc/$1/smaps" "$2.smaps" 2>/dev/null || true
  cp "/proc/$1/status" "$2.status"
  cp "/proc/$1/smaps_rollup" "$2.smaps_rollup"
}
# One field of a snapshot's status, in MiB.
mib() { awk -v k="$2:" '$1 == k { printf "%.1f MiB", $2 / 1024 }' "$1.status"; }
cpu_seconds() { awk '{ printf "%.1f s", ($14 + $15) / 100 }' "/proc/$1/stat"; }
