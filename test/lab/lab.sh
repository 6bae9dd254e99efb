#!/usr/bin/env bash
# Network lab for the demo and for manual experiments (see package test/lab for the topology).
#   lab.sh up N             build router, client and N nodes; prints names and addresses
#   lab.sh down             remove everything `up` created
#   lab.sh exec HOST CMD..  run CMD in HOST's namespace (router, client, node-0, ...)
# Must run as root. Builds the Go command once per checkout state into $HERALD_CACHE.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
bin=${HERALD_CACHE:-$HOME/.cache/herald}/bin/herald-lab
if [ ! -x "$bin" ] || [ -n "$(find "$root/test/lab" -name '*.go' -newer "$bin" -print -quit)" ]; then
  mkdir -p "$(dirname "$bin")"
  (cd "$root" && CGO_ENABLED=0 go build -o "$bin" ./test/lab/cmd/lab)
fi
exec "$bin" "$@"
