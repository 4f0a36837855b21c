#!/usr/bin/env bash
# Runs every fuzz target of the module for a bounded time each ($1, default
# 15s) beyond its seed corpus. Seeds run in the normal test run too.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-15s}
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "--- fuzz $pkg $f"
		go test -run '^$' -fuzz "^$f\$" -fuzztime "$t" "$pkg" 2>&1 | grep -vE '^fuzz: elapsed: [0-9]+s, execs' | tail -n 4
	done
done
