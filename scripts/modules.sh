#!/usr/bin/env bash
# Prints the directory of every Go module in this repository, the root
# first, one a line, relative to the root. Nested modules keep what only
# some users need (the CLI, cloud SDKs, peer benchmarks) out of the module
# graph of a program that imports only the root package.
set -euo pipefail
cd "$(dirname "$0")/.."
echo .
find . -mindepth 2 -name go.mod -not -path '*/testdata/*' -not -path './.git/*' -printf '%h\n' | sort
