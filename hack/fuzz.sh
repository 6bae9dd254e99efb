#!/usr/bin/env bash
# Runs every Fuzz function in the module (found with `go test -list`, so new ones join by
# themselves) for FUZZTIME each, one at a time (go test -fuzz takes one target). PKG narrows
# the packages. New failing inputs are written to the package's testdata/fuzz/<Name>/, where
# `go test` then replays them: commit them with the fix.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME=${FUZZTIME:-30s}
PKG=${PKG:-./...}
# `go test -list` prints a package's matching names, then "ok <package> <time>".
targets=()
names=()
while read -r first second _; do
	case "$first" in
	Fuzz*) names+=("$first") ;;
	ok)
		for n in "${names[@]}"; do targets+=("$second $n"); done
		names=()
		;;
	*) names=() ;;
	esac
done < <(go test -list '^Fuzz' $PKG)
fail=0
for t in "${targets[@]}"; do
	read -r pkg name <<<"$t"
	echo "== $pkg $name ($FUZZTIME)"
	go test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" "$pkg" || fail=1
done
echo "fuzzed ${#targets[@]} functions for $FUZZTIME each"
exit $fail
