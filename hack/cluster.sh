#!/usr/bin/env bash
# make cluster / make cluster-down: the test bed's real cluster as a playground, run in the
# background by test/cluster/cmd/cluster, its state (pid, log, kubeconfig, info) under
# $HERALD_CACHE/run/cluster. Every wait is bounded and says what it waited for.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE=${HERALD_CACHE:-$HOME/.cache/herald}/run/cluster
NODES=${NODES:-2}

running() { [ -f "$STATE/pid" ] && kill -0 "$(cat "$STATE/pid")" 2>/dev/null; }

up() {
  if running; then echo "a cluster is already up (pid $(cat "$STATE/pid")):"; cat "$STATE/info" 2>/dev/null; exit 0; fi
  rm -rf "$STATE" && mkdir -p "$STATE"
  go build -o bin/herald-cluster ./test/cluster/cmd/cluster
  nohup bin/herald-cluster -nodes "$NODES" -state "$STATE" > "$STATE/log" 2>&1 &
  local pid=$! deadline=$((SECONDS + 900))
  echo "starting a $NODES-node cluster (pid $pid, log $STATE/log)…"
  until [ -f "$STATE/info" ]; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "the cluster failed to start; its log:" >&2; tail -n 60 "$STATE/log" >&2; exit 1
    fi
    if [ $SECONDS -ge $deadline ]; then
      echo "the cluster was not up within 15 minutes; its log:" >&2; tail -n 60 "$STATE/log" >&2
      kill -TERM "$pid"; exit 1
    fi
    sleep 2
  done
  cat "$STATE/info"
}

down() {
  if ! running; then echo "no cluster is up"; rm -rf "$STATE"; exit 0; fi
  local pid deadline=$((SECONDS + 120))
  pid=$(cat "$STATE/pid")
  kill -TERM "$pid"
  while kill -0 "$pid" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then echo "pid $pid did not stop within 2 minutes; its log:" >&2; tail -n 30 "$STATE/log" >&2; exit 1; fi
    sleep 1
  done
  tail -n 3 "$STATE/log"
  rm -rf "$STATE"
  echo "cluster removed"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
