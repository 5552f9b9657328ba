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
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=${1:-1000}
rate=${2:-50}
settle=${SETTLE:-30}
writers=8
name=controller
source bench/lib.sh

bench_cluster
bench_simulator "$rate"
profiler=()
[[ -n "${HEAPTRACK:-}" ]] && profiler=(heaptrack -o "$dir/heaptrack")
bench_controller "$rate" "${profiler[@]}"
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
snapshot "$ctl" "$dir/controller"
curl -s "$admin/requests" >"$dir/requests.json" # for a closer look at the timeline
md_writes=$(( $(api_writes mappeddomains) - md_before - n ))
ev_writes=$(( $(api_writes events) - ev_before ))
status() { mib "$dir/controller" "$1"; }

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
echo "controller CPU                  $(cpu_seconds "$ctl")"
if [[ -n "${HEAPTRACK:-}" ]]; then
  # stop the controller where it stands: what it still holds is the settled heap
  pkill -KILL -f "$BIN controller" || true
  wait "$ctl" 2>/dev/null || true
  data=$(compgen -G "$dir/heaptrack*" | head -1)
  readable() { grep -v '^[[:space:]]*\(in\|at\) /' | sed -E 's/::h[0-9a-f]{16}//g' | head -120; }
  echo; echo "== heap at the peak (top consumers)"
  heaptrack_print -f "$data" -p 1 -a 0 -T 0 -l 0 -n 10 -s 2 | sed -n '/PEAK MEMORY CONSUMERS/,$p' | readable
  echo; echo "== heap still held when settled (top consumers)"
  heaptrack_print -f "$data" -p 0 -a 0 -T 0 -l 1 -n 10 -s 2 | sed -n '/MEMORY LEAKS/,$p' | readable
fi
