#!/usr/bin/env bash
# Throughput of `closte-operator simulate` at zero latency, measured with wrk
# (Debian package `wrk`) over loopback. Builds the release binary first.
#   bench/simulator.sh [seconds] [connections]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
secs=${1:-10}
conns=${2:-32}
command -v wrk >/dev/null || { echo "wrk is needed: apt-get install wrk" >&2; exit 1; }
cargo build --release -q
bin=target/release/closte-operator
key=bench-key
out=$(mktemp -d)
trap 'kill $pid 2>/dev/null; rm -rf "$out"' EXIT
"$bin" simulate --listen 127.0.0.1:0 --api-key "$key" >"$out/ready" 2>"$out/log" &
pid=$!
for _ in $(seq 100); do [[ -s "$out/ready" ]] && break; sleep 0.1; done
api=$(sed -E 's/.*"api":"([^"]+)".*/\1/' "$out/ready")
admin=${api%/api/client}/_sim
for i in $(seq 100); do
  curl -sf -H 'content-type: application/json' -d "{\"domain\":\"site$i.example.com\"}" "$admin/domains" >/dev/null
done
cat >"$out/add.lua" <<LUA
counter = 0
request = function()
  counter = counter + 1
  local body = "apikey=$key&wildcard=0&domain=w" .. counter .. "-" .. math.random(1, 1000000000) .. ".example.com"
  return wrk.format("POST", nil, {["Content-Type"] = "application/x-www-form-urlencoded"}, body)
end
LUA
echo "== getdomains (100 aliases), $conns connections, ${secs}s"
wrk -t2 -c"$conns" -d"${secs}s" "$api/getdomains?apikey=$key" | grep -E 'Requests/sec|Latency|requests in'
echo "== adddomainalias (new domain each request), $conns connections, ${secs}s"
wrk -t2 -c"$conns" -d"${secs}s" -s "$out/add.lua" "$api/adddomainalias" | grep -E 'Requests/sec|Latency|requests in'
