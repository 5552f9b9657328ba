#!/usr/bin/env bash
# The sidecar: its RSS idle, the latency from a native-door request to the
# MappedDomain stored (N requests one at a time), and its RSS once its
# namespace holds N domains that the controller has taken to `done` (so the
# cache holds their full status). Release build, local control plane,
# simulator and controller as in bench/controller.sh.
#   bench/sidecar.sh [domains]        e.g. bench/sidecar.sh 1000
# SETTLE=secs: idle time before each RSS reading (20).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=${1:-1000}
settle=${SETTLE:-20}
name=sidecar
source bench/lib.sh

bench_cluster
bench_simulator 500
bench_controller 500
token=bench-sidecar-token
echo "$token" >"$dir/token"
port=$(free_port)
"$BIN" sidecar --listen "127.0.0.1:$port" --namespace default --token-file "$dir/token" \
  --check-interval 10s >"$dir/sidecar.log" 2>&1 &
side=$!
pids+=("$side")
started=$(now)
wait_ready "http://127.0.0.1:$port/readyz" "$side" "$dir/sidecar.log"
ready=$(now)
sleep "$settle"
snapshot "$side" "$dir/idle"
latency=$(python3 bench/requests.py "http://127.0.0.1:$port" "$token" "$n")
until [[ $(metric 'closte_operator_mapped_domains{stage="done"}') -ge $n ]]; do sleep 0.5; done
sleep "$settle"
snapshot "$side" "$dir/loaded"
cached=$(curl -s -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/domains" | python3 -c 'import json, sys; d = json.load(sys.stdin)["domains"]; print(len(d), sum(x["stage"] == "done" for x in d))')

echo "sidecar start to ready           $(since "$started" "$ready") s"
echo "sidecar RSS idle                 $(mib "$dir/idle" VmRSS) (code $(mib "$dir/idle" RssFile), heap and stacks $(mib "$dir/idle" RssAnon))"
echo "$latency"
echo "domains in its cache / done      ${cached/ / / }"
echo "sidecar RSS with $n domains    $(mib "$dir/loaded" VmRSS) (peak $(mib "$dir/loaded" VmHWM); code $(mib "$dir/loaded" RssFile))"
echo "sidecar CPU                      $(cpu_seconds "$side")"
