#!/usr/bin/env bash
# govulncheck cannot reach its online database from here, so build one
# offline from the OSV data in golang.org/x/vulndb (from the Go module
# proxy), with its cmd/indexdb in a throwaway module (never in our go.mod).
# The database is cached by vulndb version. Findings in our code or our
# dependencies fail the gate; standard-library findings depend on the Go
# toolchain the user builds with, so they are printed, not gated.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=${XDG_CACHE_HOME:-$HOME/.cache}/tokenmgr-ci
mkdir -p "$cache"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

(
	cd "$tmp"
	go mod init vulndbtool >/dev/null 2>&1
	go get -tool golang.org/x/vulndb/cmd/indexdb@latest >/dev/null 2>&1
)
ver=$(cd "$tmp" && go list -m -f '{{.Version}}' golang.org/x/vulndb)
db="$cache/vulndb-$ver"
if [ ! -f "$db/index/db.json" ]; then
	src=$(cd "$tmp" && go list -m -f '{{.Dir}}' golang.org/x/vulndb)
	echo "building the vulnerability database from golang.org/x/vulndb@$ver"
	rm -rf "$db.partial"
	(cd "$tmp" && go tool indexdb -vulns "$src/data/osv" -out "$db.partial")
	mv "$db.partial" "$db"
fi
echo "database: golang.org/x/vulndb@$ver"

out="$tmp/findings.json"
for m in $(bash scripts/modules.sh); do
	(cd "$m" && govulncheck -db "file://$db" -format json ./...)
done >"$out"
# Every finding that reaches our code (has a trace) and is not in the
# standard library fails the gate.
python3 - "$out" <<'PY'
import json, sys
dec = json.JSONDecoder()
text = open(sys.argv[1]).read()
i, osv, ours, std = 0, {}, set(), set()
while i < len(text):
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    obj, i = dec.raw_decode(text, i)
    if "osv" in obj:
        osv[obj["osv"]["id"]] = obj["osv"].get("summary", "")
    f = obj.get("finding")
    if f and f.get("trace") and f["trace"][0].get("function"):
        mod = f["trace"][0].get("module", "")
        (std if mod == "stdlib" else ours).add(f["osv"])
for v in sorted(std):
    print(f"toolchain (not gated): {v} {osv.get(v, '')}")
for v in sorted(ours):
    print(f"FINDING: {v} {osv.get(v, '')}")
print(f"govulncheck: {len(ours)} findings in our code or dependencies, {len(std)} in the Go toolchain")
sys.exit(1 if ours else 0)
PY
