package main

// What every run of the command pays before main: the package
// initialisation of this module's own packages.

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// initLine is one line of GODEBUG=inittrace=1: a package, its heap bytes
// and allocations at init.
var initLine = regexp.MustCompile(`^init (\S+) @\S+ ms, \S+ ms clock, (\d+) bytes, (\d+) allocs$`)

// TestOwnPackagesInitCheaply runs the built command with GODEBUG=inittrace=1
// and checks that none of this module's packages does more than a few
// small allocations at init. A shell loop of `tokenmgr token` pays every
// package's init on every run, before main: awscreds compiled two regular
// expressions there (1342 allocations, 98 KB of fresh heap, about 1 ms on a
// slow VM) for commands that never check a session name or region.
// Allocation counts are exact, so this does not depend on the machine's
// speed.
func TestOwnPackagesInitCheaply(t *testing.T) {
	const maxBytes, maxAllocs = 8 << 10, 64
	r := exe(t, nil, vars{"GODEBUG": "inittrace=1"}, "version")
	require.Equal(t, 0, r.code, r.stderr)
	seen := 0
	for line := range strings.SplitSeq(r.stderr, "\n") {
		m := initLine.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil || (m[1] != "main" && !strings.HasPrefix(m[1], "github.com/tokenmgr/tokenmgr")) {
			continue
		}
		seen++
		bytes, _ := strconv.Atoi(m[2])
		allocs, _ := strconv.Atoi(m[3])
		assert.LessOrEqual(t, bytes, maxBytes, "heap bytes allocated by %s's init", m[1])
		assert.LessOrEqual(t, allocs, maxAllocs, "allocations by %s's init", m[1])
	}
	// store's init allocates its errors: without its line the trace was
	// not read at all.
	require.NotZero(t, seen, "no init line of this module's packages in:\n%s", r.stderr)
}
