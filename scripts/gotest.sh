#!/usr/bin/env bash
# go test -race -count=1 ./... in every module of the repository
# (scripts/modules.sh), with any extra arguments; fails if any module fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# Each module is tested on its own, with the dependency versions its own
# go.mod gives its users, not the workspace's (go.work) union of them.
export GOWORK=off
rc=0
for m in $(bash scripts/modules.sh); do
	echo "--- module $m"
	(cd "$m" && go test -race -count=1 "$@" ./...) || rc=1
done
exit $rc
