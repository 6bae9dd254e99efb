#!/usr/bin/env bash
# Installs everything Herald's tests and demo need on a fresh Debian machine with Go:
# Debian packages (FRR, arping, ndisc6, curl, tcpdump, protoc), etcd and a kube-apiserver built
# from the Go module proxy, and the Go tools used by `make verify` and code generation.
# Everything is cached under $HERALD_CACHE (default ~/.cache/herald) keyed by version, so a
# second run takes a second or two. Usage: install.sh [apt|etcd|apiserver|node|tools|all]...
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-1.37.2}
# The etcd that Kubernetes $KUBE_VERSION names (build/dependencies.yaml, kubeadm's
# DefaultEtcdVersion, its etcd client). Keep in step with EtcdVersion in test/kubeapi/server.go.
ETCD_VERSION=${ETCD_VERSION:-3.7.0}
CACHE=${HERALD_CACHE:-$HOME/.cache/herald}
BIN=$CACHE/bin
mkdir -p "$BIN"

log() { printf '[install] %s\n' "$*" >&2; }

# etcd is not among them: Debian's (3.4) lacks RequestWatchProgress, so kube-apiserver turns off
# streaming lists (watch-list) that real clusters serve informers with; install_etcd builds one.
# prometheus brings promtool, which checks the chart's alerting rules.
apt_packages=(frr iputils-arping ndisc6 curl tcpdump iproute2 protobuf-compiler iputils-ping procps prometheus)

# install_apt installs the named Debian packages (default: apt_packages) that are missing.
install_apt() {
  local pkgs=("$@") missing=() p
  [ ${#pkgs[@]} -gt 0 ] || pkgs=("${apt_packages[@]}")
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -eq 0 ]; then return 0; fi
  log "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # FRR's and containerd's postinst try to start services; there is no init system to honour that.
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
}

# install_etcd builds etcd $ETCD_VERSION (the main package of go.etcd.io/etcd/server/v3) from the
# Go module proxy into $BIN/etcd-v$ETCD_VERSION, linked as $BIN/etcd. The module's own go.mod
# replaces its sibling etcd modules with local paths, which `go install module@version` refuses,
# so it is built from a small module that requires it, as install_kube does.
install_etcd() {
  local out=$BIN/etcd-v$ETCD_VERSION
  if [ -x "$out" ]; then ln -sf "etcd-v$ETCD_VERSION" "$BIN/etcd"; return 0; fi
  log "building etcd v$ETCD_VERSION from the Go module proxy (under a minute on 2 cores)"
  local began=$SECONDS mod=$CACHE/src/etcd-v$ETCD_VERSION
  mkdir -p "$mod"
  (
    cd "$mod"
    if [ ! -f go.sum ]; then
      printf 'module herald.local/etcdtools\n\ngo 1.26.0\n' > go.mod
      go mod edit -require=go.etcd.io/etcd/server/v3@v$ETCD_VERSION
    fi
    # The version string is in the source (api/v3/version); only the commit is unknown here.
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath \
      -ldflags="-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=module-v$ETCD_VERSION" \
      -o "$out.tmp" go.etcd.io/etcd/server/v3
    mv "$out.tmp" "$out"
  )
  ln -sf "etcd-v$ETCD_VERSION" "$BIN/etcd"
  log "etcd cached at $out (built in $((SECONDS - began)) s)"
}

# install_kube builds k8s.io/kubernetes/cmd/<name> (kube-apiserver, kubectl) at $KUBE_VERSION
# from the Go module proxy into $BIN/<name>-v$KUBE_VERSION, linked as $BIN/<name>.
install_kube() {
  local name=$1 out=$BIN/$1-v$KUBE_VERSION
  if [ -x "$out" ]; then ln -sf "$name-v$KUBE_VERSION" "$BIN/$name"; return 0; fi
  log "building $name v$KUBE_VERSION from the Go module proxy (kube-apiserver: about 10 minutes on 2 cores)"
  local mod=$CACHE/src/kube-v$KUBE_VERSION
  mkdir -p "$mod"
  (
    cd "$mod"
    if [ ! -f go.sum ]; then
      cat > go.mod <<MOD
module herald.local/kubetools

go 1.26.0
MOD
      cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
	_ "k8s.io/kubernetes/cmd/kubelet"
)
GO
      go mod edit -require=k8s.io/kubernetes@v$KUBE_VERSION
      # k8s.io/kubernetes pins its staging modules at v0.0.0; point each at the published release.
      local kmod
      kmod=$(go mod download -json k8s.io/kubernetes@v$KUBE_VERSION | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
      local minor=${KUBE_VERSION#1.}
      for m in $(grep -E '^\s*k8s.io/[a-z0-9-]+ v0\.0\.0$' "$kmod" | awk '{print $1}' | sort -u); do
        go mod edit -replace="$m=$m@v0.$minor"
      done
      GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
    fi
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -ldflags="-s -w -X k8s.io/component-base/version.gitVersion=v$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitVersion=v$KUBE_VERSION" -o "$out.tmp" k8s.io/kubernetes/cmd/$name
    mv "$out.tmp" "$out"
  )
  ln -sf "$name-v$KUBE_VERSION" "$BIN/$name"
  log "$name cached at $out"
}

install_apiserver() { install_kube kube-apiserver; install_kube kubectl; }

# The real-cluster tier (test/cluster, make cluster): the node and control-plane binaries from
# the same module as kube-apiserver (most packages are shared, so they build in minutes once it
# is built), and the container runtime, runc, the CNI plugins, iptables and conntrack from
# Debian. Debian's containerd 1.6 serves kubelet 1.37 through the CRI fallback that 1.38
# removes; it saves building containerd 2.x on every cold machine, and moving to it is this one
# function when the cluster moves to 1.38.
node_apt_packages=(containerd runc containernetworking-plugins iptables conntrack)

install_node() {
  install_apt "${node_apt_packages[@]}"
  local name
  for name in kubelet kube-proxy kube-scheduler kube-controller-manager; do install_kube "$name"; done
}

# Go tools, pinned; installed into $BIN with a version suffix so upgrades never reuse stale ones.
go_tools=(
  "staticcheck honnef.co/go/tools/cmd/staticcheck@v0.8.2"
  "controller-gen sigs.k8s.io/controller-tools/cmd/controller-gen@v0.20.0"
  "deepcopy-gen k8s.io/code-generator/cmd/deepcopy-gen@v0.37.2"
  "client-gen k8s.io/code-generator/cmd/client-gen@v0.37.2"
  "lister-gen k8s.io/code-generator/cmd/lister-gen@v0.37.2"
  "informer-gen k8s.io/code-generator/cmd/informer-gen@v0.37.2"
  "protoc-gen-go google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12"
  "protoc-gen-go-grpc google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.6.0"
  # Deployment artefacts (deploy/): helm v3.22.0 builds with go1.26; kustomize v5.8.2 is the
  # newest CLI whose go directive (1.26.0, kustomize/api v0.21.2) this toolchain accepts.
  "helm helm.sh/helm/v3/cmd/helm@v3.22.0"
  "kustomize sigs.k8s.io/kustomize/kustomize/v5@v5.8.2"
)

install_tools() {
  local entry name pkg
  for entry in "${go_tools[@]}"; do
    name=${entry%% *}; pkg=${entry#* }
    local ver=${pkg##*@}
    if [ -x "$BIN/$name-$ver" ]; then ln -sf "$name-$ver" "$BIN/$name"; continue; fi
    log "go install $pkg"
    local tmp; tmp=$(mktemp -d)
    GOBIN=$tmp CGO_ENABLED=0 go install "$pkg"
    mv "$tmp/$name" "$BIN/$name-$ver" && rm -rf "$tmp"
    ln -sf "$name-$ver" "$BIN/$name"
  done
}

[ $# -gt 0 ] || set -- all
# One install at a time per cache: two test runs started together on a fresh machine would
# otherwise build the same binaries into the same temporary paths.
exec 9>"$CACHE/install.lock"
flock 9
for what in "$@"; do
  case "$what" in
    apt) install_apt ;;
    etcd) install_etcd ;;
    apiserver) install_apiserver ;;
    node) install_node ;;
    tools) install_tools ;;
    all) install_apt; install_tools; install_etcd; install_apiserver; install_node ;;
    *) echo "usage: $0 [apt|etcd|apiserver|node|tools|all]..." >&2; exit 2 ;;
  esac
done
