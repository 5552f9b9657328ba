#!/usr/bin/env bash
# The controller at scale, against a local control plane and the simulator
# (50 ms latency, WRITE_RATE writes/s, DNS and HTTPS, certificates issued 5 s
# after registration, checkInterval 10 s). Release build.
#
#   bench/controller.sh [objects] [write-rate]        e.g. bench/controller.sh 10000 500
#
# Creates the MappedDomains concurrently (bench/create.py, 8 connections straight
# to the API server), then reports:
# time to create them, until all are on Closte (and the rate bound), until all
# are `done`; Closte list calls; DNS/TLS checks; API writes per new domain
# (MappedDomain writes and events, from the API server's apiserver_request_total,
# the benchmark's own creates not counted); the controller's RSS once settled
# and its peak (VmHWM). BIN=path runs another build of the binary; SETTLE=secs
# sets how long the controller idles before its settled RSS is read (30).
# HEAPTRACK=1 runs the controller under heaptrack (Debian's heaptrack) and
# prints the top heap consumers at the peak and once settled (RSS figures are
# then heaptrack's, not the controller's).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=${1:-1000}
rate=${2:-50}
settle=${SETTLE:-30}
writers=8
if [[ -z "${BIN:-}" ]]; then
  cargo build --release -q
  target=$(cargo metadata --no-deps --format-version 1 | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  BIN=$target/release/closte-operator
fi
dir=$PWD/target/bench-controller
rm -rf "$dir"; mkdir -p "$dir"
cleanup() {
  kill "${ctl:-}" "${sim:-}" 2>/dev/null || true
  bash tests/controlplane/controlplane.sh down "$dir/cp" >/dev/null 2>&1 || true
}
trap cleanup EXIT
now() { date +%s.%N; }
since() { echo "scale=1; ($2 - $1) / 1" | bc; }

bash tests/controlplane/controlplane.sh up "$dir/cp" >/dev/null
export KUBECONFIG=$dir/cp/kubeconfig
"$BIN" crd | kubectl apply -f - >/dev/null
kubectl wait --for=condition=Established crd/mappeddomains.closte-operator.io >/dev/null
# the API server prepares a new CRD's write path on the first write (about 2 s): not the controller's time
printf 'apiVersion: closte-operator.io/v1alpha1\nkind: MappedDomain\nmetadata: {name: warm-up, namespace: default}\nspec: {domain: warm-up.example}\n' |
  kubectl create -f - >/dev/null
kubectl delete mappeddomain warm-up >/dev/null # no controller yet: no finalizer holds it

CLOSTE_CLIENT_API_KEY=bench "$BIN" simulate --listen 127.0.0.1:0 --latency 50ms \
  --write-rate-limit "$rate" --dns-listen 127.0.0.1:0 --https-listen 127.0.0.1:0 \
  --issue-delay 5s --ca-out "$dir/ca.pem" >"$dir/sim.ready" 2>"$dir/sim.log" &
sim=$!
for _ in $(seq 100); do [[ -s "$dir/sim.ready" ]] && break; sleep 0.1; done
field() { sed -E "s/.*\"$1\":\"([^\"]+)\".*/\\1/" "$dir/sim.ready"; }
api=$(field api)
dns=$(field dns)
https_port=$(field https | sed -E 's/.*:([0-9]+)$/\1/')
admin=${api%/api/client}/_sim
sim_stat() { curl -s "$admin/stats" | sed -E "s/.*\"$1\":([0-9]+).*/\\1/"; }

metrics_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
profiler=()
[[ -n "${HEAPTRACK:-}" ]] && profiler=(heaptrack -o "$dir/heaptrack")
CLOSTE_CLIENT_API_KEY=bench "${profiler[@]}" "$BIN" controller --closte-api-url "$api" --closte-write-rate "$rate" \
  --dns-server "$dns" --https-port "$https_port" --ca-file "$dir/ca.pem" --expected-target 127.0.0.1 \
  --metrics-addr "127.0.0.1:$metrics_port" --leader-elect=false >"$dir/controller.log" 2>&1 &
ctl=$!
until curl -sf "http://127.0.0.1:$metrics_port/readyz" >/dev/null; do
  kill -0 "$ctl" 2>/dev/null || { cat "$dir/controller.log"; exit 1; }
  sleep 0.1
done
metric() { curl -s "http://127.0.0.1:$metrics_port/metrics" | awk -v m="$1" 'index($0, m) == 1 { s += $NF } END { print s + 0 }'; }
# writes the API server counted: MappedDomains (and their status) and events
api_writes() {
  kubectl get --raw /metrics | awk -v r="$1" '
    /^apiserver_request_total\{/ && index($0, "resource=\"" r "\"") && $0 ~ /verb="(POST|PUT|PATCH|APPLY|DELETE)"/ { s += $NF }
    END { print s + 0 }'
}
md_before=$(api_writes mappeddomains)
ev_before=$(api_writes events)

start=$(now)
python3 bench/create.py "$KUBECONFIG" "$n" "$writers"
created=$(now)
until [[ $(sim_stat aliases) -ge $n ]]; do sleep 0.2; done
on_closte=$(now)
until [[ $(metric 'closte_operator_mapped_domains{stage="done"}') -ge $n ]]; do sleep 0.5; done
done_at=$(now)
sleep "$settle"
cp "/proc/$ctl/smaps" "$dir/controller.smaps" 2>/dev/null || true
cp "/proc/$ctl/status" "$dir/controller.status"
cp "/proc/$ctl/smaps_rollup" "$dir/controller.smaps_rollup"
curl -s "$admin/requests" >"$dir/requests.json" # for a closer look at the timeline
md_writes=$(( $(api_writes mappeddomains) - md_before - n ))
ev_writes=$(( $(api_writes events) - ev_before ))
status() { awk -v k="$1:" '$1 == k { printf "%.1f MiB", $2 / 1024 }' "$dir/controller.status"; }

echo "objects                         $n (created over $writers concurrent connections)"
echo "simulator                       50 ms latency, $rate writes/s"
echo "create took                     $(since "$start" "$created") s"
echo "all on Closte after             $(since "$start" "$on_closte") s (rate bound $(echo "scale=1; $n / $rate" | bc) s)"
echo "all done (DNS + certificate)    $(since "$start" "$done_at") s"
echo "getdomains calls                $(sim_stat getdomains)"
echo "adddomainalias calls            $(sim_stat adddomainalias)"
echo "DNS/TLS checks                  $(metric 'closte_operator_checks_total')"
echo "MappedDomain writes per domain  $(echo "scale=2; $md_writes / $n" | bc)"
echo "events per domain               $(echo "scale=2; $ev_writes / $n" | bc)"
echo "controller RSS settled          $(status VmRSS) (after ${settle} s idle; heap and stacks $(status RssAnon), mapped files $(status RssFile))"
echo "controller RSS peak             $(status VmHWM)"
echo "controller CPU                  $(awk '{ printf "%.1f s", ($14 + $15) / 100 }' "/proc/$ctl/stat")"
if [[ -n "${HEAPTRACK:-}" ]]; then
  # stop the controller where it stands: what it still holds is the settled heap
  pkill -KILL -f "$BIN controller" || true
  wait "$ctl" 2>/dev/null || true
  data=$(compgen -G "$dir/heaptrack*" | head -1)
  echo; echo "== heap at the peak (top consumers)"
  heaptrack_print -f "$data" -p 1 -a 0 -T 0 -l 0 -n 12 -s 0 | sed -n '/PEAK MEMORY CONSUMERS/,/^$/p;/peak heap memory/p' | head -80
  echo; echo "== heap still held when settled (top consumers)"
  heaptrack_print -f "$data" -p 0 -a 0 -T 0 -l 1 -n 12 -s 0 | sed -n '/MEMORY LEAKED/,$p' | head -80
fi
