#!/usr/bin/env bash
# A real local Kubernetes control plane (etcd + kube-apiserver, RBAC on) for
# tests and demos. Binaries are built from the Go module proxy through the
# wrapper module next to this script and cached by version, with kstatus
# (sigs.k8s.io/cli-utils) for the tests that judge objects as Flux does.
#
#   controlplane.sh build              build (or reuse) the cached binaries; prints their folder
#   controlplane.sh build-node         also build the node's components (kubelet, kube-proxy,
#                                      kube-controller-manager, kube-scheduler)
#   controlplane.sh up DIR [--watch PID] [--node]
#                                      start on loopback ports, state in DIR; writes
#                                      DIR/kubeconfig; with --watch, stops when PID exits
#                                      (only the control plane this call started: a later
#                                      `up` of the same DIR is left alone). With --node,
#                                      also a node that runs pods (node.sh; root only).
#                                      Harmless when already running.
#   controlplane.sh import DIR FILE    make the image of an OCI archive available to the node's pods
#   controlplane.sh down DIR           stop and remove DIR
#   controlplane.sh stop-apiserver DIR / start-apiserver DIR
#                                      stop kube-apiserver / start it again (state kept)
#   controlplane.sh restart-apiserver DIR
#                                      stop kube-apiserver and start it again (state kept)
#   controlplane.sh versions           print the Kubernetes and etcd versions
set -euo pipefail
# Every command on DIR holds DIR.lock (flock -o: the servers started do not
# inherit it), so an `up` and a watcher's `down` of the same folder never
# interleave.

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache_root=${CLOSTE_OPERATOR_CACHE:-$HOME/.cache/closte-operator}

k8s_version=$(awk '$1 == "k8s.io/kubernetes" { print $2 }' "$here/go.mod")
etcd_version=$(awk '$1 == "go.etcd.io/etcd/server/v3" { print $2 }' "$here/go.mod")
# The folder is keyed by versions plus the module files, so any change rebuilds.
key=$(cat "$here/go.mod" "$here/go.sum" "$here"/cmd/*/main.go | sha256sum | cut -c1-12)
bin_dir="$cache_root/controlplane/k8s-$k8s_version-etcd-$etcd_version-$key"

source "$here/node.sh"

log() { printf 'controlplane: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

build() {
  if [[ -x "$bin_dir/kube-apiserver" && -x "$bin_dir/etcd" && -x "$bin_dir/kstatus" ]]; then
    echo "$bin_dir"
    return
  fi
  command -v go >/dev/null || die "Go is needed to build kube-apiserver and etcd (apt-get install golang, or see https://go.dev/dl)"
  log "building kube-apiserver $k8s_version and etcd $etcd_version into $bin_dir (first time only; several minutes)"
  local tmp="$bin_dir.tmp.$$"
  mkdir -p "$tmp"
  local minor=${k8s_version#v1.}; minor=${minor%%.*}
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  local start=$SECONDS
  (
    cd "$here"
    export CGO_ENABLED=0 GOFLAGS=-buildvcs=false
    go build -trimpath -ldflags "-s -w" -o "$tmp/etcd" ./cmd/etcd
    log "etcd built after $((SECONDS - start))s"
    go build -trimpath -ldflags "-s -w" -o "$tmp/kstatus" ./cmd/kstatus
    go build -trimpath -ldflags "$ldflags" -o "$tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
    log "kube-apiserver built after $((SECONDS - start))s"
  ) || { rm -rf "$tmp"; die "go build failed (see above); the Go module proxy must be reachable"; }
  rm -rf "$bin_dir"
  mv "$tmp" "$bin_dir"
  echo "$bin_dir"
}

build_node() {
  local bins; bins=$(build)
  if [[ -x "$bins/kubelet" && -x "$bins/kube-proxy" && -x "$bins/kube-controller-manager" && -x "$bins/kube-scheduler" ]]; then
    echo "$bins"
    return
  fi
  log "building kubelet, kube-proxy, kube-controller-manager and kube-scheduler $k8s_version into $bins (first time only; several minutes)"
  local minor=${k8s_version#v1.} start=$SECONDS name; minor=${minor%%.*}
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  for name in kubelet kube-proxy kube-controller-manager kube-scheduler; do
    [[ -x "$bins/$name" ]] && continue
    (cd "$here" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false \
      go build -trimpath -ldflags "$ldflags" -o "$bins/$name.tmp" "k8s.io/kubernetes/cmd/$name") ||
      die "go build of $name failed (see above); the Go module proxy must be reachable"
    mv "$bins/$name.tmp" "$bins/$name"
    log "$name built after $((SECONDS - start))s"
  done
  echo "$bins"
}

# Ports. Neither server can report a port it chose itself (etcd advertises
# its URLs, and kube-apiserver's --secure-port 0 turns HTTPS off), and a port
# picked by binding port 0 and releasing it may be taken again before the
# server binds it. So each server is started on a random port below the
# kernel's ephemeral range (where no port-0 bind of another program lands),
# and, when it says "address already in use", started again on another one,
# a bounded number of times.
random_port() {
  local low; low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  echo $((10000 + RANDOM % (low - 10000)))
}
ATTEMPTS=5

port_taken() { # LOG
  grep -q "address already in use" "$1" 2>/dev/null
}

# Starts etcd on fresh ports (again on others while they are taken) and waits
# until it is healthy.
start_etcd() { # DIR BINS
  local dir=$1 bins=$2 attempt etcd_port peer_port deadline
  for ((attempt = 1; attempt <= ATTEMPTS; attempt++)); do
    etcd_port=$(random_port); peer_port=$(random_port)
    [[ "$etcd_port" != "$peer_port" ]] || continue
    rm -rf "$dir/etcd"
    setsid "$bins/etcd" --name cp --data-dir "$dir/etcd" \
      --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
      --listen-peer-urls "http://127.0.0.1:$peer_port" --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
      --initial-cluster "cp=http://127.0.0.1:$peer_port" --unsafe-no-fsync --log-level warn \
      </dev/null >"$dir/logs/etcd.log" 2>&1 &
    echo $! >"$dir/etcd.pid"
    echo "$etcd_port" >"$dir/etcd.port"
    deadline=$((SECONDS + 60))
    while :; do
      if port_taken "$dir/logs/etcd.log"; then
        kill -9 "$(cat "$dir/etcd.pid")" 2>/dev/null || true
        log "etcd: port $etcd_port or $peer_port taken; again on others"
        continue 2
      fi
      alive "$dir/etcd.pid" || return 1
      curl -sf --max-time 2 "http://127.0.0.1:$etcd_port/health" >/dev/null 2>&1 && return 0
      ((SECONDS < deadline)) || return 1
      sleep 0.1
    done
  done
  return 1
}

# Starts kube-apiserver on a fresh port (again on another while it is taken),
# writes the kubeconfig, and waits until it is ready.
start_apiserver_fresh() { # DIR BINS
  local dir=$1 bins=$2 attempt deadline
  for ((attempt = 1; attempt <= ATTEMPTS; attempt++)); do
    random_port >"$dir/api.port"
    start_apiserver "$dir" "$bins"
    write_kubeconfig "$dir"
    deadline=$((SECONDS + 90))
    until api_get "$dir" /readyz && api_get "$dir" /api/v1/namespaces/default; do
      if port_taken "$dir/logs/kube-apiserver.log"; then
        kill -9 "$(cat "$dir/kube-apiserver.pid")" 2>/dev/null || true
        log "kube-apiserver: port $(cat "$dir/api.port") taken; again on another"
        continue 2
      fi
      alive "$dir/etcd.pid" && alive "$dir/kube-apiserver.pid" && ((SECONDS < deadline)) || return 1
      sleep 0.3
    done
    return 0
  done
  return 1
}

alive() { [[ -f "$1" ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# The API server's address: loopback, or the node's when there is one.
api_host() { # DIR
  if [[ -f "$1/node.mode" ]]; then echo "$NODE_IP"; else echo 127.0.0.1; fi
}

api_get() { # DIR PATH
  curl -sf --max-time 5 --cacert "$1/pki/ca.crt" --cert "$1/pki/admin.crt" --key "$1/pki/admin.key" \
    "https://$(api_host "$1"):$(cat "$1/api.port")$2" >/dev/null 2>&1
}

gen_pki() { # DIR
  local pki="$1/pki"
  mkdir -p "$pki"
  local ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
  openssl req -x509 "${ec[@]}" -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 3650 \
    -subj "/CN=closte-operator-test-ca" 2>/dev/null
  sign() { # NAME SUBJECT EXTENSIONS
    openssl req -new "${ec[@]}" -keyout "$pki/$1.key" -subj "$2" 2>/dev/null |
      openssl x509 -req -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 3650 \
        -extfile <(printf '%b' "$3") -out "$pki/$1.crt" 2>/dev/null
  }
  # also the node's address and the `kubernetes` Service's, where pods meet it
  sign apiserver "/CN=kube-apiserver" \
    "subjectAltName=IP:127.0.0.1,IP:$NODE_IP,IP:${SERVICE_CIDR%.0/*}.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth"
  sign admin "/O=system:masters/CN=closte-operator-admin" "extendedKeyUsage=clientAuth"
  openssl ecparam -name prime256v1 -genkey -noout -out "$pki/sa.key" 2>/dev/null
  openssl ec -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
}

write_kubeconfig() { # DIR
  local dir=$1 port; port=$(cat "$1/api.port")
  cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: closte-operator-local
  cluster:
    server: https://$(api_host "$dir"):$port
    certificate-authority: $dir/pki/ca.crt
users:
- name: admin
  user:
    client-certificate: $dir/pki/admin.crt
    client-key: $dir/pki/admin.key
contexts:
- name: closte-operator-local
  context: {cluster: closte-operator-local, user: admin}
current-context: closte-operator-local
EOF
}

start_apiserver() { # DIR BINS: on the ports recorded in DIR
  local dir=$1 bins=$2 etcd_port api_port host node_flags=()
  etcd_port=$(cat "$dir/etcd.port"); api_port=$(cat "$dir/api.port"); host=$(api_host "$dir")
  if [[ -f "$dir/node.mode" ]]; then
    # kubelets are authorized as nodes; the API server calls them (logs, exec) as admin
    node_flags=(--authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction
      --kubelet-client-certificate "$dir/pki/admin.crt" --kubelet-client-key "$dir/pki/admin.key"
      --kubelet-preferred-address-types InternalIP)
  else
    node_flags=(--authorization-mode RBAC)
  fi
  setsid "$bins/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address "$host" --advertise-address "$host" --secure-port "$api_port" \
    --tls-cert-file "$dir/pki/apiserver.crt" --tls-private-key-file "$dir/pki/apiserver.key" \
    --client-ca-file "$dir/pki/ca.crt" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$dir/pki/sa.pub" --service-account-signing-key-file "$dir/pki/sa.key" \
    "${node_flags[@]}" --service-cluster-ip-range "$SERVICE_CIDR" \
    --cert-dir "$dir/pki" --profiling=false --enable-priority-and-fairness=false \
    </dev/null >"$dir/logs/kube-apiserver.log" 2>&1 &
  echo $! >"$dir/kube-apiserver.pid"
}

# SIGKILL: gone at once, as a crashed API server is, with no graceful
# shutdown that still serves requests already connected.
stop_apiserver() { # DIR
  local dir; dir=$(cd "$1" && pwd)
  kill -9 "$(cat "$dir/kube-apiserver.pid")" 2>/dev/null || true
  for _ in $(seq 100); do alive "$dir/kube-apiserver.pid" || break; sleep 0.1; done
  ! alive "$dir/kube-apiserver.pid" || die "kube-apiserver did not stop"
  log "kube-apiserver stopped"
}

# Starts kube-apiserver again on the same port and etcd (state kept) and
# waits until it is ready.
start_again() { # DIR
  local dir bins; dir=$(cd "$1" && pwd); bins=$(build)
  alive "$dir/kube-apiserver.pid" && die "kube-apiserver is running"
  start_apiserver "$dir" "$bins"
  local deadline=$((SECONDS + 60))
  until api_get "$dir" /readyz; do
    alive "$dir/kube-apiserver.pid" && ((SECONDS < deadline)) || die "kube-apiserver did not come back"
    sleep 0.2
  done
  log "kube-apiserver started again"
}

up() { # DIR [--watch PID] [--node]
  local dir watch="" with_node=""
  mkdir -p "$1"; dir=$(cd "$1" && pwd); shift
  while (($#)); do
    case $1 in
      --watch) watch=${2:?--watch needs a PID}; shift 2 ;;
      --node) with_node=1; shift ;;
      *) die "unknown option $1" ;;
    esac
  done
  if alive "$dir/etcd.pid" && alive "$dir/kube-apiserver.pid" && api_get "$dir" /readyz; then
    log "already running; KUBECONFIG=$dir/kubeconfig"
    echo "export KUBECONFIG=$dir/kubeconfig"
    return
  fi
  down "$dir" quiet
  mkdir -p "$dir/logs"
  # whose control plane this is: a watcher stops only the one its own call started
  local owner; owner="$$-$RANDOM$RANDOM"
  echo "$owner" >"$dir/owner"
  local bins
  if [[ -n "$with_node" ]]; then
    [[ $EUID == 0 ]] || die "the node needs root (containerd, bridges, iptables)"
    node_check_tools
    bins=$(build_node)
    touch "$dir/node.mode"
    echo "$bins" >"$dir/bins"
    node_network_up
  else
    bins=$(build)
  fi
  command -v openssl >/dev/null || die "openssl is needed to create the control plane's certificates (apt-get install openssl)"
  command -v curl >/dev/null || die "curl is needed to see the servers ready (apt-get install curl)"
  gen_pki "$dir"

  if [[ -n "$watch" ]]; then
    setsid bash -c 'while kill -0 "$1" 2>/dev/null; do sleep 1; done; "$2" down-if-owner "$3" "$4"' \
      _ "$watch" "$here/controlplane.sh" "$dir" "$owner" </dev/null >/dev/null 2>&1 &
  fi

  if ! start_etcd "$dir" "$bins" || ! start_apiserver_fresh "$dir" "$bins"; then
    tail -n 20 "$dir/logs/etcd.log" "$dir/logs/kube-apiserver.log" >&2 || true
    down "$dir" quiet
    die "control plane did not become ready (logs above)"
  fi
  local api_port; api_port=$(cat "$dir/api.port")
  if [[ -n "$with_node" ]] && ! (node_up "$dir" "$bins"); then
    down "$dir" quiet
    die "the node did not become Ready (logs above)"
  fi
  log "ready at https://$(api_host "$dir"):$api_port (kube-apiserver $k8s_version, etcd $etcd_version)"
  echo "export KUBECONFIG=$dir/kubeconfig"
}

down() { # DIR [quiet]
  local dir=$1 name
  [[ -d "$dir" ]] || return 0
  node_down "$dir"
  for name in kube-apiserver etcd; do
    if alive "$dir/$name.pid"; then
      kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
      for _ in $(seq 50); do alive "$dir/$name.pid" || break; sleep 0.1; done
      alive "$dir/$name.pid" && kill -9 "$(cat "$dir/$name.pid")" 2>/dev/null || true
    fi
  done
  rm -rf "$dir"
  [[ -n "${2:-}" ]] || log "stopped and removed $dir"
}

# Runs this script's COMMAND on DIR holding DIR.lock.
locked() { # COMMAND DIR [ARGS...]
  local dir=${2:?usage: controlplane.sh $1 DIR}
  mkdir -p "$(dirname "$dir")"
  command -v flock >/dev/null || die "flock is needed (apt-get install util-linux)"
  flock -o "${dir%/}.lock" bash "$0" "_$1" "${@:2}"
}

case "${1:-}" in
  build) build ;;
  build-node) build_node ;;
  up|down|down-if-owner|stop-apiserver|start-apiserver|restart-apiserver) locked "$@" ;;
  _up) shift; up "$@" ;;
  _down) down "$2" ;;
  # a watcher's stop: only when DIR still holds the control plane it watched
  _down-if-owner) [[ "$(cat "$2/owner" 2>/dev/null)" == "${3:?owner}" ]] && down "$2" quiet || true ;;
  import) node_import "${2:?usage: controlplane.sh import DIR FILE}" "${3:?usage: controlplane.sh import DIR FILE}" ;;
  _stop-apiserver) stop_apiserver "$2" ;;
  _start-apiserver) start_again "$2" ;;
  _restart-apiserver) stop_apiserver "$2"; start_again "$2" ;;
  versions) echo "kubernetes $k8s_version etcd $etcd_version" ;;
  *) sed -n '2,15p' "$0" >&2; exit 2 ;;
esac
