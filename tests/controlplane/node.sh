# A real node next to the control plane: containerd + runc (cgroupfs) and the
# CNI plugins from Debian, kubelet, kube-proxy, kube-controller-manager and
# kube-scheduler built with kube-apiserver. Sourced by controlplane.sh.
#
# Pods live on one bridge (closte0, 10.88.0.1/24) that also carries the node's
# and the API server's address, so pods reach the API server through the
# `kubernetes` Service and the host's test servers at 10.88.0.1. Forwarded pod
# traffic to any other address is dropped: nothing leaves this machine.
# One node per machine (the bridge and kube-proxy's rules are the machine's).

NODE_BRIDGE=closte0
NODE_IP=10.88.0.1
POD_CIDR=10.88.0.0/24
SERVICE_CIDR=10.96.0.0/24
NODE_NAME=closte-node
# the pod sandbox image, built here (no registry is reachable)
PAUSE_IMAGE=localhost/closte-operator/pause:1
# which folder holds the machine's node
NODE_OWNER_FILE=/run/closte-operator-node

node_check_tools() {
  local missing=() tool
  for tool in containerd ctr runc ip iptables conntrack gcc python3; do
    command -v "$tool" >/dev/null || missing+=("$tool")
  done
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] || missing+=(cni-plugins)
  ((${#missing[@]} == 0)) ||
    die "the node needs ${missing[*]}: apt-get install containerd runc containernetworking-plugins iptables conntrack gcc python3"
}

# A client certificate of the cluster's CA and a kubeconfig that uses it.
node_kubeconfig() { # DIR NAME SUBJECT
  local dir=$1 pki="$1/pki" port; port=$(cat "$1/api.port")
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$pki/$2.key" -subj "$3" 2>/dev/null |
    openssl x509 -req -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial -days 3650 \
      -extfile <(printf 'extendedKeyUsage=clientAuth') -out "$pki/$2.crt" 2>/dev/null
  cat >"$dir/node/$2.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster: {server: "https://$NODE_IP:$port", certificate-authority: "$pki/ca.crt"}
users:
- name: $2
  user: {client-certificate: "$pki/$2.crt", client-key: "$pki/$2.key"}
contexts:
- name: local
  context: {cluster: local, user: $2}
current-context: local
EOF
}

# The sandbox ("pause") image: a static program that waits for a signal.
node_pause_image() { # DIR
  local work="$1/node/pause"
  mkdir -p "$work/rootfs"
  printf '%s\n' '#include <signal.h>' '#include <unistd.h>' \
    'static void done(int s) { (void)s; _exit(0); }' \
    'int main(void) { signal(SIGTERM, done); signal(SIGINT, done); for (;;) pause(); }' >"$work/pause.c"
  gcc -static -O2 -o "$work/rootfs/pause" "$work/pause.c" || die "cannot build the pause program (gcc with static libc: apt-get install libc6-dev)"
  python3 "$here/../../scripts/image.py" --pause "$PAUSE_IMAGE" --output "$work/pause.oci.tar" "$work/rootfs/pause" >/dev/null
  echo "$work/pause.oci.tar"
}

node_up() { # DIR BINS
  local dir=$1 bins=$2 node="$1/node"
  mkdir -p "$node"/{run,state,root,cni,ipam,kubelet,logs}
  echo "$dir" >"$NODE_OWNER_FILE"

  # containerd, the CRI plugin pointed at this folder, the bridge CNI network;
  # pods route everything through the node, where Service addresses are
  # translated (and the FORWARD rule drops what would leave the pod network)
  cat >"$node/cni/10-closte.conflist" <<EOF
{"cniVersion": "0.4.0", "name": "closte-pods", "plugins": [
  {"type": "bridge", "bridge": "$NODE_BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
   "ipam": {"type": "host-local", "dataDir": "$node/ipam", "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$NODE_IP"}]],
            "routes": [{"dst": "0.0.0.0/0"}]}}]}
EOF
  cat >"$node/containerd.toml" <<EOF
version = 2
root = "$node/root"
state = "$node/state"
[grpc]
  address = "$node/run/containerd.sock"
[ttrpc]
  address = "$node/run/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # this machine cannot lower an OOM score below containerd's own (0)
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$node/cni"
EOF
  setsid containerd --config "$node/containerd.toml" </dev/null >"$dir/logs/containerd.log" 2>&1 &
  echo $! >"$dir/containerd.pid"
  local deadline=$((SECONDS + 30))
  until ctr --address "$node/run/containerd.sock" version >/dev/null 2>&1; do
    alive "$dir/containerd.pid" && ((SECONDS < deadline)) || { tail -20 "$dir/logs/containerd.log" >&2; die "containerd did not start"; }
    sleep 0.2
  done
  node_import "$dir" "$(node_pause_image "$dir")"

  # the components' identities: each its own, as RBAC's bootstrap roles expect
  node_kubeconfig "$dir" kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  node_kubeconfig "$dir" kube-proxy "/CN=system:kube-proxy"
  node_kubeconfig "$dir" kube-controller-manager "/CN=system:kube-controller-manager"
  node_kubeconfig "$dir" kube-scheduler "/CN=system:kube-scheduler"

  # A quota on a resource whose CRD is new is counted only at the quota
  # controller's next full sync (5 minutes by default), and refuses every
  # write until then; the chart installs both at once. 15 s here.
  setsid "$bins/kube-controller-manager" --kubeconfig "$node/kube-controller-manager.kubeconfig" \
    --authentication-kubeconfig "$node/kube-controller-manager.kubeconfig" \
    --authorization-kubeconfig "$node/kube-controller-manager.kubeconfig" \
    --service-account-private-key-file "$dir/pki/sa.key" --root-ca-file "$dir/pki/ca.crt" \
    --use-service-account-credentials --leader-elect=false --secure-port 0 \
    --service-cluster-ip-range "$SERVICE_CIDR" --resource-quota-sync-period 15s \
    </dev/null >"$dir/logs/kube-controller-manager.log" 2>&1 &
  echo $! >"$dir/kube-controller-manager.pid"
  setsid "$bins/kube-scheduler" --kubeconfig "$node/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "$node/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "$node/kube-scheduler.kubeconfig" \
    --leader-elect=false --secure-port 0 \
    </dev/null >"$dir/logs/kube-scheduler.log" 2>&1 &
  echo $! >"$dir/kube-scheduler.pid"

  # pods reach Services through the host: forwarding on, but only between pods
  cat /proc/sys/net/ipv4/ip_forward >"$node/ip_forward.before"
  iptables -I FORWARD -s "$POD_CIDR" ! -d "$POD_CIDR" -j DROP -m comment --comment closte-operator-node
  sysctl -qw net.ipv4.ip_forward=1
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || true
  setsid "$bins/kube-proxy" --kubeconfig "$node/kube-proxy.kubeconfig" --hostname-override "$NODE_NAME" \
    --proxy-mode iptables --cluster-cidr "$POD_CIDR" --conntrack-max-per-core 0 \
    --healthz-bind-address "127.0.0.1:$(random_port)" --metrics-bind-address "127.0.0.1:$(random_port)" \
    </dev/null >"$dir/logs/kube-proxy.log" 2>&1 &
  echo $! >"$dir/kube-proxy.pid"

  echo "nameserver $NODE_IP" >"$node/resolv.conf"
  cat >"$node/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $(random_port)
readOnlyPort: 0
healthzPort: 0
cgroupDriver: cgroupfs
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://$node/run/containerd.sock
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $dir/pki/ca.crt}
authorization: {mode: Webhook}
clusterDomain: cluster.local
# pods ask the node for names (nobody answers): no lookup leaves the machine
resolvConf: $node/resolv.conf
# no disk or memory pressure evictions on a shared test machine
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
localStorageCapacityIsolation: false
maxPods: 60
staticPodPath: ""
podLogsDir: $node/pod-logs
EOF
  setsid "$bins/kubelet" --config "$node/kubelet.yaml" --kubeconfig "$node/kubelet.kubeconfig" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --root-dir "$node/kubelet" \
    --cert-dir "$node/kubelet/pki" \
    </dev/null >"$dir/logs/kubelet.log" 2>&1 &
  echo $! >"$dir/kubelet.pid"

  deadline=$((SECONDS + 120))
  until [[ "$(node_ready "$dir")" == True ]]; do
    local name
    for name in containerd kubelet kube-proxy kube-controller-manager kube-scheduler; do
      alive "$dir/$name.pid" || { tail -20 "$dir/logs/$name.log" >&2; die "$name stopped"; }
    done
    ((SECONDS < deadline)) || { tail -20 "$dir/logs/kubelet.log" >&2; die "node $NODE_NAME not Ready after 120s"; }
    sleep 0.5
  done
  log "node $NODE_NAME Ready at $NODE_IP (pods on $POD_CIDR)"
}

# Removes the KUBE-* chains kubelet and kube-proxy made, and the rules that
# jump to them, in every table of both families.
node_iptables_clean() {
  local cmd table rule chain
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null || continue
    for table in filter nat mangle; do
      # awk, not grep: no match (kube-proxy never ran) is no failure under pipefail
      "$cmd" -t "$table" -S 2>/dev/null | awk '$1 == "-A" && $2 !~ /^KUBE-/ && / -j KUBE-/' |
        while read -r rule; do eval "$cmd -t $table ${rule/-A/-D}" 2>/dev/null || true; done
      for chain in $("$cmd" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ { print $2 }'); do
        "$cmd" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$cmd" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ { print $2 }'); do
        "$cmd" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

node_ready() { # DIR
  kubectl --kubeconfig "$1/kubeconfig" get node "$NODE_NAME" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true
}

# Makes an OCI archive's image available to the node's pods.
node_import() { # DIR FILE
  ctr --address "$1/node/run/containerd.sock" -n k8s.io images import --no-unpack=false "$2" >/dev/null ||
    die "cannot import $2 into containerd"
}

# The bridge, before the API server binds its address.
node_network_up() {
  if ip link show "$NODE_BRIDGE" >/dev/null 2>&1; then
    local other; other=$(cat "$NODE_OWNER_FILE" 2>/dev/null || true)
    if [[ -n "$other" && -f "$other/containerd.pid" ]] && alive "$other/containerd.pid"; then
      # the previous test's node may be on its way down: its watcher saw the
      # test exit a moment ago
      local waited=0
      while alive "$other/containerd.pid" && ((waited < 60)); do sleep 1; waited=$((waited + 1)); done
      alive "$other/containerd.pid" && die "a node already runs on this machine (controlplane.sh down $other)"
      # and its `down` (which holds its lock) still removes the bridge and the rules
      flock -w 60 "${other%/}.lock" true 2>/dev/null || true
    fi
    [[ -z "$other" ]] || node_down "$other"
    ip link del "$NODE_BRIDGE" 2>/dev/null || true
  fi
  ip link add "$NODE_BRIDGE" type bridge || die "cannot create the bridge $NODE_BRIDGE (needs root and CAP_NET_ADMIN)"
  ip addr add "$NODE_IP/24" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
}

# Stops the node's processes and every container, and leaves the machine as
# it was: mounts, network namespaces, cgroups, iptables rules, the bridge.
node_down() { # DIR
  local dir node name
  # absolute: the mounts below are matched against /proc/self/mountinfo
  dir=$(cd "$1" && pwd) || return 0
  node="$dir/node"
  [[ -d "$node" ]] || return 0
  for name in kubelet kube-proxy kube-scheduler kube-controller-manager; do
    alive "$dir/$name.pid" && kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
  done
  # every container process: the pods' cgroups, then their shims
  local procs
  for procs in $(find /sys/fs/cgroup/*/kubepods -name cgroup.procs 2>/dev/null); do
    xargs -r kill -9 <"$procs" 2>/dev/null || true
  done
  pkill -9 -f "containerd-shim-runc-v2 .*-address $node/run/containerd.sock" 2>/dev/null || true
  alive "$dir/containerd.pid" && kill "$(cat "$dir/containerd.pid")" 2>/dev/null || true
  for name in kubelet kube-proxy kube-scheduler kube-controller-manager containerd; do
    for _ in $(seq 50); do alive "$dir/$name.pid" || break; sleep 0.1; done
    alive "$dir/$name.pid" && kill -9 "$(cat "$dir/$name.pid")" 2>/dev/null || true
  done
  awk -v p="$node/" 'index($5, p) == 1 { print $5 }' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ { print $1 }'); do ip netns delete "$ns" 2>/dev/null || true; done
  find /sys/fs/cgroup/*/kubepods -depth -type d -exec rmdir {} + 2>/dev/null || true
  node_iptables_clean
  while iptables -D FORWARD -s "$POD_CIDR" ! -d "$POD_CIDR" -j DROP -m comment --comment closte-operator-node 2>/dev/null; do :; done
  [[ -f "$node/ip_forward.before" ]] && sysctl -qw net.ipv4.ip_forward="$(cat "$node/ip_forward.before")" || true
  ip link del "$NODE_BRIDGE" 2>/dev/null || true
  [[ "$(cat "$NODE_OWNER_FILE" 2>/dev/null)" != "$dir" ]] || rm -f "$NODE_OWNER_FILE"
}
