# syntax=docker/dockerfile:1
# Herald's image: herald (controller, speaker, explain, diag) and the announcer plugins
# herald-announcer-{arp,ndp,bgp} side by side in /usr/local/bin, where the speaker looks for
# them (beside its own executable).
#
# Build: docker build -t herald-lb/herald:0.1.0 .
# The build needs no network beyond the Go module proxy (GOPROXY, default the public proxy;
# point it at a mirror with --build-arg GOPROXY=...). No cgo: every binary is static.
#
# Final stage: distroless "static" (no shell, no package manager, CA certificates and
# /etc/passwd only), tag :nonroot so the default user is 65532. The controller runs as that
# user; the chart runs the speaker as root with every capability dropped but NET_RAW, because
# a non-root process does not get added capabilities in its effective set without file
# capabilities, and distroless images have no setcap.

ARG GO_VERSION=1.26
FROM golang:${GO_VERSION}-bookworm AS build
ARG GOPROXY=https://proxy.golang.org
ARG VERSION=dev
ENV CGO_ENABLED=0 GOFLAGS=-trimpath GOPROXY=${GOPROXY} GOTOOLCHAIN=local
WORKDIR /src
# Modules first, so source edits reuse the cached download layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    mkdir -p /out && \
    go build -ldflags="-s -w" -o /out/ \
      ./cmd/herald \
      ./cmd/herald-announcer-arp \
      ./cmd/herald-announcer-ndp \
      ./cmd/herald-announcer-bgp \
      ./cmd/kubectl-herald

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/herald"]
