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

cleanup() {
  set +e
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

for b in herald herald-announcer-arp herald-announcer-ndp; do
  [ -x "$bin/$b" ] || { echo "demo: $bin/$b missing: run make build" >&2; exit 1; }
done
CGO_ENABLED=0 go build -o "$work/echo" ./test/demo/echo

say "starting a real etcd + kube-apiserver"
export KUBECONFIG
KUBECONFIG=$(go run ./test/kubeapi/cmd/kubeapi start 2>"$work/kubeapi.err")
cat "$work/kubeapi.err" >&2
grep -q "already running" "$work/kubeapi.err" || own_apiserver=1
kubectl version 2>/dev/null | tail -1 || true
kubectl apply -f deploy/crds >/dev/null
for i in $(seq 1 100); do kubectl get servicel2statuses.metallb.io -A >/dev/null 2>&1 && break; sleep 0.2; done

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

ip=""
for i in $(seq 1 100); do
  ip=$(kubectl get svc echo -o jsonpath='{.status.loadBalancer.ingress[0].ip}')
  [ -n "$ip" ] && break; sleep 0.2
done
[ -n "$ip" ] || { echo "demo: the Service got no IP"; tail -20 "$work/controller.log"; exit 1; }
kubectl get svc echo
for n in "${nodes[@]}"; do "$lab" exec "$n" ip addr add "$ip/32" dev lo; done

announcer() { kubectl get servicel2statuses -n default -o jsonpath='{.items[0].status.node}' 2>/dev/null; }
first=""
for i in $(seq 1 150); do first=$(announcer); [ -n "$first" ] && break; sleep 0.2; done
[ -n "$first" ] || { echo "demo: nobody announces $ip"; tail -30 "$work"/speaker-*.log; exit 1; }
say "$ip is announced by $first (ServiceL2Status):"
kubectl get servicel2statuses -n default

say "curl http://$ip/ from the client namespace"
reply=""
for i in $(seq 1 50); do reply=$("$lab" exec client curl -s --max-time 1 "http://$ip/" || true); [ -n "$reply" ] && break; sleep 0.2; done
echo "$reply"
[[ "$reply" == *"$first"* ]] || { echo "demo: expected a reply from $first"; exit 1; }
"$lab" exec client arping -c 1 -w 2 -I eth0 "$ip" | grep -i reply || true

say "herald explain default/echo"
"$bin/herald" explain default/echo --config test/demo/speaker.yaml

say "marking $first NotReady"
start=$(date +%s.%N)
set_ready "$first" False
second=""
for i in $(seq 1 100); do
  reply=$("$lab" exec client curl -s --max-time 1 "http://$ip/" || true)
  if [ -n "$reply" ] && [[ "$reply" != *"$first"* ]]; then second=$reply; break; fi
  sleep 0.1
done
end=$(date +%s.%N)
[ -n "$second" ] || { echo "demo: $ip did not move away from $first"; tail -20 "$work"/speaker-*.log; exit 1; }
echo "$second   (after $(awk "BEGIN{printf \"%.2f\", $end - $start}") s)"
kubectl get servicel2statuses -n default
kubectl get events -n default --field-selector involvedObject.name=echo | tail -5

say "herald explain default/echo (after the failure)"
"$bin/herald" explain default/echo --config test/demo/speaker.yaml
say "demo complete"
