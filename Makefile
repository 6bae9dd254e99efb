# Herald's build, verification, tests and demo. Every target installs what it needs
# (test/tools/install.sh, cached under $(HERALD_CACHE)), so each works on a fresh machine.
SHELL := /usr/bin/env bash
HERALD_CACHE ?= $(HOME)/.cache/herald
export HERALD_CACHE
TOOLS_BIN := $(HERALD_CACHE)/bin
export PATH := $(TOOLS_BIN):$(PATH)
GO ?= go
GOFLAGS_TEST ?= -count=1
BIN_DIR := $(CURDIR)/bin
export HERALD_BIN_DIR := $(BIN_DIR)
INTEGRATION_TIMEOUT ?= 30m
E2E_TIMEOUT ?= 40m

.PHONY: all build image deps tools generate verify test test-unit test-integration test-e2e test-cluster cluster cluster-down fuzz bench chaos demo apiserver apiserver-stop clean

all: build

## image: Herald's container image as an OCI archive ($(IMAGE_TAR)), built without a Docker
## daemon: every ./cmd binary (static, -trimpath, no build ID or VCS stamp) in /usr/local/bin
## on an empty base, non-root by default. The same commit and Go version give the same digest.
IMAGE_VERSION ?= $(shell sed -n 's/^appVersion: "\(.*\)"/\1/p' deploy/helm/herald/Chart.yaml)
IMAGE_REF ?= docker.io/herald-lb/herald:$(IMAGE_VERSION)
IMAGE_TAR ?= $(BIN_DIR)/herald.oci.tar
image:
	@rm -rf $(BIN_DIR)/image && mkdir -p $(BIN_DIR)/image
	CGO_ENABLED=0 $(GO) build -trimpath -buildvcs=false -ldflags='-s -w -buildid=' -o $(BIN_DIR)/image/ ./cmd/...
	$(GO) run ./hack/image -bin $(BIN_DIR)/image -ref $(IMAGE_REF) -out $(IMAGE_TAR)

## deps: Debian packages, the Go tools and the real kube-apiserver (cached).
deps:
	@bash test/tools/install.sh all

## tools: the Debian packages and Go tools that verify and generate need (protoc among them).
tools:
	@bash test/tools/install.sh apt tools

## build: every binary into ./bin.
build:
	@mkdir -p $(BIN_DIR)
	CGO_ENABLED=0 $(GO) build -o $(BIN_DIR)/ ./cmd/...

## generate: deepcopy, clientset, listers, informers, CRDs and protobuf code.
generate: tools
	@bash hack/generate.sh

## verify: gofmt, go vet, staticcheck, and generated files up to date.
verify: tools
	@bash hack/verify.sh

## test: everything CI runs.
test: verify test-unit test-integration test-e2e test-cluster

test-unit:
	$(GO) test $(GOFLAGS_TEST) ./...

test-integration: deps
	$(GO) test $(GOFLAGS_TEST) -tags integration -run 'Integration' -timeout $(INTEGRATION_TIMEOUT) ./...

test-e2e: deps build
	$(GO) test $(GOFLAGS_TEST) -p 1 -tags e2e -run 'E2E' -timeout $(E2E_TIMEOUT) ./...

## test-cluster: the real-cluster tier (test/cluster): kubelet, containerd and kube-proxy in
## every lab node's namespace, Herald installed from the chart with the image `make image` built.
CLUSTER_TIMEOUT ?= 30m
test-cluster: deps build image
	$(GO) test $(GOFLAGS_TEST) -p 1 -tags cluster -run 'Cluster' -timeout $(CLUSTER_TIMEOUT) -v ./test/cluster/

## cluster: the same real cluster as a playground, Herald installed from the chart and a
## sample Service (NODES=2); it prints the kubeconfig and what to try. cluster-down removes it.
cluster: deps build image
	@bash hack/cluster.sh up

cluster-down:
	@bash hack/cluster.sh down

## fuzz: every Fuzz function in the module for FUZZTIME each (default 30s); PKG=./announcers/...
## narrows it. `make test-unit` already replays every committed seed corpus.
FUZZTIME ?= 30s
fuzz:
	FUZZTIME=$(FUZZTIME) PKG='$(PKG)' bash hack/fuzz.sh

## bench: every benchmark that reports a figure named in the issues; BENCH=regexp selects
## some (e.g. make bench BENCH='Failover|Handover'), PKG=./test/e2e/ one package.
BENCH ?= .
PKG ?= ./...
bench: deps build
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchmem -timeout 90m -tags 'integration e2e' $(PKG)

## chaos: issue 15's chaos benchmark in the network lab: 6 nodes, 100 Services, CHAOS_FAULTS
## (default 100) random faults one at a time (speaker and announcer kills and hangs, link
## flaps, node death, API partition, NotReady); it reports the longest unanswered and two-MAC
## windows per fault kind and whether the status objects are right at the end. CHAOS_SEED
## replays a run's draws; CHAOS_FASTPATH=1 runs the speakers' fast path (and adds blocking one
## node's fast path to the faults). About 10 s per fault.
CHAOS_FAULTS ?= 100
chaos: deps build
	CHAOS_FAULTS=$(CHAOS_FAULTS) CHAOS_SEED=$(CHAOS_SEED) CHAOS_FASTPATH=$(CHAOS_FASTPATH) $(GO) test -run '^$$' -bench 'BenchmarkE2EChaos$$' -benchtime 1x -timeout 120m -tags e2e -v ./test/e2e/

## demo: the whole system in network namespaces, no cluster needed. It installs only what it
## runs (Debian packages, etcd, kube-apiserver, kubectl), not the code generators or linters.
demo: build
	@bash test/tools/install.sh apt etcd apiserver
	@bash test/demo/demo.sh

## apiserver: a real etcd + kube-apiserver on loopback for manual use.
apiserver: deps
	@$(GO) run ./test/kubeapi/cmd/kubeapi start

apiserver-stop:
	@$(GO) run ./test/kubeapi/cmd/kubeapi stop

clean:
	rm -rf $(BIN_DIR)
