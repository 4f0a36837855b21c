#!/usr/bin/env bash
# Runs every fuzz target of every module for a bounded time each ($1, default
# 15s) beyond its seed corpus (seeds also run in the normal test run), and
# prints each target's final execution count.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-15s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for m in $(bash scripts/modules.sh); do
for pkg in $(cd "$m" && go list ./...); do
	dir=$(cd "$m" && go list -f '{{.Dir}}' "$pkg")
	for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		if ! (cd "$m" && go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg") >"$out" 2>&1; then
			cat "$out"
			echo "FAIL: fuzz $pkg $f"
			exit 1
		fi
		execs=$(grep -o 'execs: [0-9]*' "$out" | tail -n 1 || true)
		echo "fuzz $pkg $f: ${execs:-execs: ?} in $t, no failure"
	done
done
done
