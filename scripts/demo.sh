#!/usr/bin/env bash
# The demo, through the Helm chart: installs the chart into the local control
# plane (CRD, RBAC, ServiceAccounts), then runs the controller and the
# sidecar on this machine under their ServiceAccounts' tokens and with the
# chart's own arguments (there is no kubelet here to run pods), against the
# simulator. Applies the examples, shows them live until every one is done,
# and says what to try next. Called by `make demo`; `make demo-down` stops it.
# With --node (`make demo NODE=1`, the control plane started with a node):
# the chart's own pods instead, from the image `make image` wrote to
# SIM_DIR/closte-operator.oci.tar, against the
# simulator on the node's address; no sidecar (it runs beside WordPress).
#   scripts/demo.sh BIN SIM_DIR SIM_KEY SIM_API [--node]
set -euo pipefail
bin=$1 dir=$2 key=$3 api=$4 node=${5:-}
helm=$(bash tests/tools/helm.sh)
ns=closte-system
wp=default
mkdir -p "$dir"

# The examples (and FIRST ..., a command run after them), then a table of
# them each time it changes, until every one is done; LOG is where to look
# when they are not.
#   live LOG [FIRST ...]
live() {
  local log=$1; shift
  echo "== the examples"
  kubectl -n "$wp" create secret generic closte-api-key --from-literal=apiKey="$key" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl apply -n "$wp" -f examples/
  if (($#)); then "$@"; echo; fi
  echo "== live, until every domain is done"
  local last="" table pending deadline=$((SECONDS + 180))
  while :; do
    table=$(kubectl get md -n "$wp" -o custom-columns='NAME:.metadata.name,DOMAIN:.spec.domain,STAGE:.status.stage,READY:.status.conditions[?(@.type=="Ready")].status,REASON:.status.conditions[?(@.type=="Ready")].reason,EXPIRES:.status.certificate.notAfter')
    [[ "$table" != "$last" ]] && { printf '\n%s\n' "$table"; last=$table; }
    # Judged from the very table shown, so the last table printed is the one that is all done.
    pending=$(awk 'NR > 1 && $3 != "done"' <<<"$table" | wc -l)
    [[ -n $table && $pending == 0 ]] && break
    ((SECONDS < deadline)) || { echo "not done after 3 minutes; see $log" >&2; exit 1; }
    sleep 1
  done
}

if [ "$node" = --node ]; then
  host=${api#http://}; host=${host%%:*}
  kubectl get node -o name | grep . >/dev/null ||
    { echo "the control plane has no node: make demo-down, then make demo NODE=1 (as root)" >&2; exit 1; }
  echo "== the image \`make image\` wrote into the node's containerd"
  bash tests/controlplane/controlplane.sh import target/controlplane "$dir/closte-operator.oci.tar"
  echo "== the chart into $ns (restricted Pod Security): two controller pods"
  kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  kubectl label namespace "$ns" pod-security.kubernetes.io/enforce=restricted --overwrite >/dev/null
  "$helm" upgrade --install closte-operator charts/closte-operator -n "$ns" \
    --set closte.apiKey="$key" --set closte.apiUrl="$api" \
    --set checks.dnsServer="$host:10053" --set checks.httpsPort=10443 \
    --set "checks.expectedTargets={$host}" --set-file checks.caBundle="$dir/ca.pem" >/dev/null
  kubectl rollout status -n "$ns" deployment/closte-operator --timeout=180s
  kubectl get pods -n "$ns" -o wide
  live "kubectl logs -n $ns deployment/closte-operator"
  cat <<EOF

Every domain is done, reconciled by a pod. Try:
  export KUBECONFIG=$KUBECONFIG
  kubectl get lease -n $ns closte-operator     # which pod leads
  kubectl logs -n $ns -l app.kubernetes.io/name=closte-operator --tail=5
  kubectl delete pod -n $ns POD                # the leader: the other takes the Lease at once
  kubectl delete md buecher-example; curl -s http://$host:18088/_sim/domains
  make demo-down
EOF
  exit 0
fi

echo "== the chart (CRD, RBAC, ServiceAccounts, Deployment) into $ns"
kubectl create namespace "$ns" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
# The examples in $wp name no Secret: the controller's own key serves $wp too
# (by default it serves only $ns once WordPress namespaces are set).
"$helm" upgrade --install closte-operator charts/closte-operator -n "$ns" \
  --set closte.apiKey="$key" --set closte.apiUrl="$api" \
  --set checks.dnsServer=127.0.0.1:10053 --set checks.httpsPort=10443 \
  --set "checks.expectedTargets={127.0.0.1}" --set "sidecar.namespaces={$wp}" \
  --set "controller.defaultKey.namespaces={$ns,$wp}" \
  --set replicaCount=1 >/dev/null
kubectl wait --for=condition=Established --timeout=60s crd/mappeddomains.closte-operator.io >/dev/null
"$helm" list -n "$ns"

# A kubeconfig with a token of ServiceAccount $2 in namespace $1 (TokenRequest).
identity() {
  local server ca
  server=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}')
  ca=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.certificate-authority}')
  cat >"$dir/$2.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters: [{name: demo, cluster: {server: $server, certificate-authority: $ca}}]
users: [{name: $2, user: {token: $(kubectl create token "$2" -n "$1" --duration=24h)}}]
contexts: [{name: demo, context: {cluster: demo, user: $2, namespace: $1}}]
current-context: demo
EOF
}

echo "== the controller, as the chart runs it, under its ServiceAccount"
identity "$ns" closte-operator
printf '%s' "$key" >"$dir/api-key"
mapfile -t args < <(kubectl get deploy closte-operator -n "$ns" -o json | python3 -c '
import json, sys
container = json.load(sys.stdin)["spec"]["template"]["spec"]["containers"][0]
for arg in container["args"]:
    name = arg.split("=")[0]
    if name == "--api-key-file":
        arg = "--api-key-file=" + sys.argv[1]
    elif name == "--metrics-addr":
        arg = "--metrics-addr=127.0.0.1:18080"
    elif name == "--log-format":
        arg = "--log-format=text"
    print(arg)
' "$dir/api-key")
KUBECONFIG=$dir/closte-operator.kubeconfig setsid "$bin" "${args[@]}" --ca-file "$dir/ca.pem" \
  >"$dir/controller.log" 2>&1 </dev/null &
echo $! >"$dir/controller.pid"
until curl -sf http://127.0.0.1:18080/readyz >/dev/null; do
  kill -0 "$(cat "$dir/controller.pid")" 2>/dev/null || { cat "$dir/controller.log"; exit 1; }
  sleep 0.2
done
echo "   ${args[*]}"

echo "== the WordPress sidecar in namespace $wp, under its ServiceAccount"
identity "$wp" closte-operator-sidecar
echo demo-sidecar-token-0123456789abcdef >"$dir/sidecar-token"
KUBECONFIG=$dir/closte-operator-sidecar.kubeconfig setsid "$bin" sidecar --namespace "$wp" \
  --token-file "$dir/sidecar-token" --credentials-secret closte-api-key --check-interval 10s \
  >"$dir/sidecar.log" 2>&1 </dev/null &
echo $! >"$dir/sidecar.pid"
until curl -sf http://127.0.0.1:8087/readyz >/dev/null; do
  kill -0 "$(cat "$dir/sidecar.pid")" 2>/dev/null || { cat "$dir/sidecar.log"; exit 1; }
  sleep 0.2
done

sidecar_add() {
  echo "== one domain through the sidecar's Closte door"
  curl -s -d apikey=demo-sidecar-token-0123456789abcdef -d domain=sidecar.example.com http://127.0.0.1:8087/api/client/adddomainalias
}
live "$dir/controller.log" sidecar_add

cat <<EOF

Every domain is done. Try:
  export KUBECONFIG=$KUBECONFIG
  CLOSTE_CLIENT_API_KEY=$key $bin status shop-example-com -n $wp --closte-api-url $api --dns-server 127.0.0.1:10053 --https-port 10443 --ca-file $dir/ca.pem
  curl -s -d apikey=demo-sidecar-token-0123456789abcdef -d domain=another.example.com http://127.0.0.1:8087/api/client/adddomainalias
  curl -s -H 'Authorization: Bearer demo-sidecar-token-0123456789abcdef' http://127.0.0.1:8087/v1/domains
  kubectl delete md buecher-example; curl -s http://127.0.0.1:18088/_sim/domains
  make demo-down
EOF
