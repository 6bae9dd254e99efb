#!/usr/bin/env bash
# Herald's demo, non-interactive: a real API server, a 3-node lab of network namespaces, the
# controller, one speaker per node namespace, a pool + L2Advertisement + Service backed by an
# echo server on every node. It shows the IP, curls it from the client namespace, runs
# `herald explain`, marks the announcing node NotReady and shows the IP answering from another
# node. Everything it started is removed on exit, also on failure or Ctrl-C. Must run as root
# (network namespaces); expects the binaries in ./bin (make build).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bin=${HERALD_BIN_DIR:-$root/bin}
work=$(mktemp -d /tmp/herald-demo.XXXXXX)
lab=test/lab/lab.sh
pids=()

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# show_logs prints the last lines of every log the demo keeps, for a failure message.
show_logs() {
  local f
  for f in "$work"/controller.log "$work"/speaker-*.log; do
    [ -f "$f" ] || continue
    printf -- '--- last 15 lines of %s\n' "${f##*/}" >&2
    tail -15 "$f" >&2
  done
  if [ -n "${KUBECONFIG:-}" ]; then
    printf -- '--- recent events\n' >&2
    kubectl get events -A --sort-by=.lastTimestamp 2>&1 | tail -10 >&2 || true
  fi
}

# fail says what went wrong, shows the logs and ends the demo (the EXIT trap cleans up).
fail() {
  printf '\ndemo: FAILED: %s\n' "$*" >&2
  show_logs
  exit 1
}

# wait_for DESC SECONDS CMD...: runs CMD every 0.2 s until it prints something and succeeds,
# leaving its output in $got. On timeout it says what it waited for, shows the logs and fails.
# Bounded by wall time, not by a count of tries, so a busy machine gets the same budget.
wait_for() {
  local desc=$1 budget=$2 deadline
  shift 2
  deadline=$(($(date +%s) + budget))
  got=""
  while :; do
    got=$("$@" 2>/dev/null) || got=""
    [ -n "$got" ] && return 0
    [ "$(date +%s)" -ge "$deadline" ] && fail "timed out after ${budget}s waiting for $desc"
    sleep 0.2
  done
}

cleanup() {
  set +e
  trap - ERR
  say "cleaning up"
  for p in "${pids[@]}"; do kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null; done
  # Speakers hand over and drain on SIGTERM (bounded by draining.timeout); give them that long.
  for i in $(seq 1 40); do
    alive=0
    for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.2
  done
  for p in "${pids[@]}"; do kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; done
  "$lab" down >/dev/null 2>&1
  [ -n "${own_apiserver:-}" ] && go run ./test/kubeapi/cmd/kubeapi stop >/dev/null 2>&1
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# Any command that fails under set -e says which one, where, and shows the logs: the demo never
# ends with a bare "Error 1".
trap 'fail "line $LINENO: \"$BASH_COMMAND\" exited with $?"' ERR

for b in herald herald-announcer-arp herald-announcer-ndp; do
  [ -x "$bin/$b" ] || { echo "demo: $bin/$b missing: run make build" >&2; exit 1; }
done
CGO_ENABLED=0 go build -o "$work/echo" ./test/demo/echo

say "starting a real etcd + kube-apiserver"
export KUBECONFIG
KUBECONFIG=$(go run ./test/kubeapi/cmd/kubeapi start 2>"$work/kubeapi.err") || {
  cat "$work/kubeapi.err" >&2
  fail "the API server did not start (its output is above)"
}
cat "$work/kubeapi.err" >&2
grep -q "already running" "$work/kubeapi.err" || own_apiserver=1
kubectl version 2>/dev/null | tail -1 || true
kubectl apply -f deploy/crds >/dev/null
crds_served() { kubectl get servicel2statuses.metallb.io -A >/dev/null && echo yes; }
wait_for "the metallb.io CRDs to be served" 60 crds_served

say "building a lab: router, client and 3 node namespaces"
"$lab" down >/dev/null 2>&1 || true
"$lab" up 3 | tee "$work/lab.txt"
gateway=$(sed -n 's/.*gateway (API server side) \([0-9.]*\).*/\1/p' "$work/lab.txt")
port=$(kubectl config view --minify -o jsonpath='{.clusters[0].cluster.server}' | sed 's/.*://')
cluster=$(kubectl config view --minify -o jsonpath='{.clusters[0].name}')
cp "$KUBECONFIG" "$work/lab.kubeconfig"
KUBECONFIG=$work/lab.kubeconfig kubectl config set-cluster "$cluster" --server="https://$gateway:$port" >/dev/null

kubectl create namespace herald-system >/dev/null
nodes=(node-0 node-1 node-2)
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
set_ready() { # node True|False
  kubectl patch node "$1" --subresource=status --type=strategic -p \
    "{\"status\":{\"conditions\":[{\"type\":\"Ready\",\"status\":\"$2\",\"reason\":\"Demo\",\"lastHeartbeatTime\":\"$now\",\"lastTransitionTime\":\"$now\"}]}}" >/dev/null
}
for n in "${nodes[@]}"; do
  kubectl create -f - >/dev/null <<YAML
apiVersion: v1
kind: Node
metadata: {name: $n, labels: {kubernetes.io/hostname: $n}}
YAML
  set_ready "$n" True
done
kubectl get nodes

say "starting the controller and a speaker in every node namespace"
setsid "$bin/herald" controller --kubeconfig "$KUBECONFIG" --namespace herald-system --metrics-bind-address 127.0.0.1:0 >"$work/controller.log" 2>&1 &
pids+=($!)
for n in "${nodes[@]}"; do
  # The echo server answers on the VIP: the VIP is local (on lo) in every node, and
  # arp_ignore=1 keeps the kernels from answering ARP for it; only Herald's announcer does.
  "$lab" exec "$n" sysctl -qw net.ipv4.conf.all.arp_ignore=1
  setsid "$lab" exec "$n" "$work/echo" -node "$n" >"$work/echo-$n.log" 2>&1 &
  pids+=($!)
  setsid "$lab" exec "$n" "$bin/herald" speaker --kubeconfig "$work/lab.kubeconfig" --node-name "$n" \
    --config test/demo/speaker.yaml --announcer-dir "$bin" >"$work/speaker-$n.log" 2>&1 &
  pids+=($!)
done

say "applying test/demo/demo.yaml (pool, L2Advertisement, Service)"
kubectl apply -f test/demo/demo.yaml
kubectl create -f - >/dev/null <<YAML
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: echo-demo, namespace: default, labels: {kubernetes.io/service-name: echo}}
addressType: IPv4
ports: [{name: http, port: 80, protocol: TCP}]
endpoints:
- {addresses: ["192.0.2.10"], nodeName: node-0, conditions: {ready: true}}
- {addresses: ["192.0.2.11"], nodeName: node-1, conditions: {ready: true}}
- {addresses: ["192.0.2.12"], nodeName: node-2, conditions: {ready: true}}
YAML

service_ip() { kubectl get svc echo -o jsonpath='{.status.loadBalancer.ingress[*].ip}'; }
wait_for "the controller to give Service default/echo an IP" 60 service_ip
ip=$got
kubectl get svc echo
for n in "${nodes[@]}"; do "$lab" exec "$n" ip addr add "$ip/32" dev lo; done

# The node named by the ServiceL2Status of default/echo, wherever the speakers keep it. A
# range over the items (not items[0]) prints nothing while there is none, instead of failing.
announcer() {
  kubectl get servicel2statuses -A -o jsonpath='{range .items[?(@.status.serviceName=="echo")]}{.status.node}{"\n"}{end}' | head -1
}
wait_for "a ServiceL2Status naming the node that announces $ip" 60 announcer
first=$got
say "$ip is announced by $first (ServiceL2Status):"
kubectl get servicel2statuses -A

say "curl http://$ip/ from the client namespace"
curl_vip() { "$lab" exec client curl -s --max-time 1 "http://$ip/"; }
wait_for "an HTTP reply from http://$ip/ in the client namespace" 30 curl_vip
reply=$got
echo "$reply"
[[ "$reply" == *"$first"* ]] || fail "expected a reply from $first, got: $reply"
"$lab" exec client arping -c 1 -w 2 -I eth0 "$ip" | grep -i reply || true

say "herald explain default/echo"
"$bin/herald" explain default/echo --config test/demo/speaker.yaml

say "marking $first NotReady"
start=$(date +%s.%N)
set_ready "$first" False
reply_not_from_first() {
  local r
  r=$("$lab" exec client curl -s --max-time 1 "http://$ip/") || return 1
  [[ "$r" != *"$first"* ]] && echo "$r"
}
wait_for "$ip to answer from a node other than $first" 30 reply_not_from_first
second=$got
end=$(date +%s.%N)
echo "$second   (after $(awk "BEGIN{printf \"%.2f\", $end - $start}") s)"
kubectl get servicel2statuses -A
kubectl get events -n default --field-selector involvedObject.name=echo | tail -5

say "herald explain default/echo (after the failure)"
"$bin/herald" explain default/echo --config test/demo/speaker.yaml
say "demo complete"
