#!/usr/bin/env bash
# Runs every code generator: each hack/generate-*.sh, in name order.
set -euo pipefail
cd "$(dirname "$0")/.."
for gen in hack/generate-*.sh; do
  echo "==> $gen" >&2
  bash "$gen"
done
