#!/usr/bin/env bash
# gofmt, go vet, staticcheck, and a check that generated files match their sources.
set -euo pipefail
cd "$(dirname "$0")/.."
fail=0
unformatted=$(gofmt -l $(git ls-files '*.go' | grep -v '^vendor/') 2>/dev/null || true)
if [ -n "$unformatted" ]; then echo "gofmt wants to reformat:"; echo "$unformatted"; fail=1; fi
go vet ./... || fail=1
go vet -tags 'integration e2e cluster' ./... || fail=1
staticcheck -tags 'integration e2e cluster' ./... || fail=1
if [ -x hack/verify-generated.sh ]; then bash hack/verify-generated.sh || fail=1; fi
exit $fail
