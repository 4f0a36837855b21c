#!/usr/bin/env bash
# Runs every fuzz target of every module for a bounded time each ($1, default
# 15s) beyond its seed corpus (seeds also run in the normal test run), and
# prints each target's final execution count.
#
# Two things of Go's fuzzing engine (go1.26), not of the targets:
#   - a new interesting input is minimised for up to a minute by default,
#     with the workers' execs stalled meanwhile; -fuzzminimizetime bounds it.
#   - a run can end with a bare "context deadline exceeded" at the
#     -fuzztime boundary, having found nothing: a race in the coordinator
#     (golang/go#75804, fixed in go1.27). That exact failure, with no
#     failing input written under testdata/fuzz, is run once more; any
#     other failure, or the same one twice, fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOWORK=off # each module with its own go.mod's versions (see go.work)
t=${1:-15s}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
fuzz() { # module package target
	(cd "$1" && go test -run '^$' -fuzz "^$3\$" -fuzztime "$t" -fuzzminimizetime 5s "$2") >"$out" 2>&1
}
coordinatorRace() { # package dir, target: the failure is golang/go#75804's
	grep -q '^    context deadline exceeded$' "$out" &&
		! grep -q 'Failing input written to' "$out" &&
		[ -z "$(cd "$1" && git status --porcelain -- "testdata/fuzz/$2" 2>/dev/null)" ]
}
for m in $(bash scripts/modules.sh); do
for pkg in $(cd "$m" && go list ./...); do
	dir=$(cd "$m" && go list -f '{{.Dir}}' "$pkg")
	for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		if ! fuzz "$m" "$pkg" "$f"; then
			if coordinatorRace "$dir" "$f"; then
				echo "fuzz $pkg $f: 'context deadline exceeded' at -fuzztime with no failing input (golang/go#75804); running it once more"
				fuzz "$m" "$pkg" "$f" || { cat "$out"; echo "FAIL: fuzz $pkg $f"; exit 1; }
			else
				cat "$out"
				echo "FAIL: fuzz $pkg $f"
				exit 1
			fi
		fi
		execs=$(grep -o 'execs: [0-9]*' "$out" | tail -n 1 || true)
		echo "fuzz $pkg $f: ${execs:-execs: ?} in $t, no failure"
	done
done
done
