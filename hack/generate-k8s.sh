#!/usr/bin/env bash
# Regenerates the metallb.io API's deepcopy functions, typed clientset, listers and informers
# (k8s.io/code-generator) and its CRDs with CEL validation (controller-gen) from the types in
# config/metallb/v1beta1 and config/metallb/v1beta2. Tools come from test/tools/install.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HERALD_CACHE:-$HOME/.cache/herald}/bin
export PATH=$BIN:$PATH
for tool in deepcopy-gen client-gen lister-gen informer-gen controller-gen; do
  command -v "$tool" >/dev/null || { echo "$tool not found: run test/tools/install.sh tools" >&2; exit 1; }
done

MODULE=github.com/herald-lb/herald
API=config/metallb
BOILERPLATE=hack/boilerplate.go.txt
VERSIONS=(v1beta1 v1beta2)
INPUTS=()
for v in "${VERSIONS[@]}"; do INPUTS+=("$MODULE/$API/$v"); done

rm -rf "$API/client"
deepcopy-gen --go-header-file "$BOILERPLATE" --output-file zz_generated.deepcopy.go "${INPUTS[@]}"

client-gen --go-header-file "$BOILERPLATE" \
  --clientset-name versioned \
  --input-base "" --input "$(IFS=,; echo "${INPUTS[*]}")" \
  --output-dir "$API/client/clientset" \
  --output-pkg "$MODULE/$API/client/clientset"
lister-gen --go-header-file "$BOILERPLATE" \
  --output-dir "$API/client/listers" \
  --output-pkg "$MODULE/$API/client/listers" \
  "${INPUTS[@]}"
informer-gen --go-header-file "$BOILERPLATE" \
  --versioned-clientset-package "$MODULE/$API/client/clientset/versioned" \
  --listers-package "$MODULE/$API/client/listers" \
  --output-dir "$API/client/informers" \
  --output-pkg "$MODULE/$API/client/informers" \
  "${INPUTS[@]}"

# The generated informers use cache.ListWatch fields client-go marks deprecated; generated code
# is not hand-edited, so staticcheck's deprecation check is off for this tree only.
cat > "$API/client/staticcheck.conf" <<'CONF'
# Written by hack/generate-k8s.sh: code-generator's informers use deprecated cache.ListWatch fields.
checks = ["inherit", "-SA1019"]
CONF

rm -f deploy/crds/metallb.io_*.yaml
controller-gen crd:crdVersions=v1 paths="./$API/..." output:crd:artifacts:config="deploy/crds"
