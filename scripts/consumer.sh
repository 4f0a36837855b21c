#!/usr/bin/env bash
# What a program importing tokenmgr takes on: builds a throwaway module that
# imports the root package and store (with a replace to this checkout),
# offline from the module cache, and prints its module count and go.sum
# lines. Fails if the graph grows past MAX_MODULES or brings in gRPC,
# OpenTelemetry or the Google Cloud/API client libraries (those belong to
# the peer comparisons, the peers module) or the AWS SDK (the awscreds
# module): never to a user of the root package.
#
# Today it is 22 (21 modules and the consumer), and that is the floor
# with these dependencies: x/crypto's go.mod brings x/net, x/term and
# x/text; x/oauth2's brings cloud.google.com/go/compute/metadata (every
# x/oauth2 user has it); zalando/go-keyring's github.com/danieljoos/wincred
# requires testify and four more (go-spew, go-difflib, objx, yaml.v3) in
# its go.mod; the file locks are gofrs/flock; and our own test
# dependencies (testify, goleak, and go.yaml.in/yaml that testify and
# flock require) are listed, if never built. go-jose is the diagnose
# module's. A new dependency must raise MAX_MODULES here, on purpose.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
max=${MAX_MODULES:-22}
tmp=$(mktemp -d)
[ -n "${KEEP_CONSUMER:-}" ] && echo "consumer module: $tmp" || trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/go.mod" <<MOD
module example.com/consumer

go 1.26.0

require github.com/tokenmgr/tokenmgr v0.0.0

replace github.com/tokenmgr/tokenmgr => $root
MOD
cat >"$tmp/main.go" <<'GO'
package main

import (
	"context"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/store"
)

func main() {
	c, err := tokenmgr.New(tokenmgr.Config{Store: store.NewMemory()})
	if err == nil {
		c.Token(context.Background())
	}
}
GO

# The root module's dependencies are in the module cache (go vet/test ran
# before). The consumer starts from the root go.sum (hashes checked when
# the root downloaded them; tidy drops what the consumer does not need),
# so the checksum database, not reachable from every machine, is not
# asked: this module is measured, never shipped. What tidy still lacks
# (test imports of dependencies, such as testify's objx) comes from the
# module proxy.
(cd "$root" && go mod download)
cp "$root/go.sum" "$tmp/go.sum"
cd "$tmp"
export GOFLAGS=-mod=mod GOWORK=off GOSUMDB=off
go mod tidy
go build -o /dev/null .
mods=$(go list -m all)
n=$(wc -l <<<"$mods")
sums=$(wc -l <go.sum)
echo "a program importing tokenmgr and tokenmgr/store: $n modules (itself included), $sums go.sum lines"
rc=0
# The AWS SDK belongs to the awscreds module, never to a root user either.
if heavy=$(grep -E 'google\.golang\.org/|go\.opentelemetry\.io/|cloud\.google\.com/go/auth|googleapis/|s2a-go|grpc|aws-sdk-go|smithy-go' <<<"$mods"); then
	echo "FAIL: heavy modules in a user's graph:"; echo "$heavy"; rc=1
fi
if [ "$n" -gt "$max" ]; then
	echo "FAIL: $n modules, more than $max:"; echo "$mods"; rc=1
fi
exit $rc
