#!/usr/bin/env bash
# Regenerates the announcer protocol's Go code from announcers/proto with protoc (Debian's
# protobuf-compiler) and the pinned protoc-gen-go / protoc-gen-go-grpc from test/tools/install.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HERALD_CACHE:-$HOME/.cache/herald}/bin
export PATH=$BIN:$PATH
for tool in protoc protoc-gen-go protoc-gen-go-grpc; do
  command -v "$tool" >/dev/null || { echo "$tool not found: run test/tools/install.sh" >&2; exit 1; }
done
protoc -I announcers/proto \
  --go_out=. --go_opt=module=github.com/herald-lb/herald \
  --go-grpc_out=. --go-grpc_opt=module=github.com/herald-lb/herald \
  announcers/proto/herald/announcer/v1/announcer.proto
