#!/usr/bin/env bash
# Fails when generated files are stale: regenerates into a scratch copy of the tree with
# hack/generate.sh and compares the generated paths with the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."
generated=(config/metallb/client config/metallb/v1beta1/zz_generated.deepcopy.go config/metallb/v1beta2/zz_generated.deepcopy.go deploy/crds announcers/announcerv1)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
tar --exclude=./.git --exclude=./bin -cf - . | tar -C "$scratch" -xf -
(cd "$scratch" && bash hack/generate.sh >/dev/null)
stale=0
for p in "${generated[@]}"; do
  [ -e "$p" ] || [ -e "$scratch/$p" ] || continue
  if ! diff -r -q "$p" "$scratch/$p" >&2; then stale=1; fi
done
if [ $stale -ne 0 ]; then
  echo "generated files are stale (see the differences above): run 'make generate' (hack/generate.sh) and commit the result" >&2
  exit 1
fi
echo "generated files are up to date" >&2
