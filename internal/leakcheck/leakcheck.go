// Package leakcheck finds goroutines a test started and left running.
//
// Take a Snapshot before the code under test starts anything, tear it all
// down, then call Check: it waits (bounded) for the goroutines that were
// not in the snapshot to end, and fails the test with their stacks if some
// remain. Goroutines are told apart by ID, so goroutines that existed
// before the snapshot and end meanwhile do not mask a leak.
package leakcheck

import (
	"runtime"
	"strconv"
	"strings"
	"time"
)

// TB is the part of testing.TB that Check uses.
type TB interface {
	Helper()
	Errorf(format string, args ...any)
}

// Snapshot is the set of goroutines alive at one moment.
type Snapshot struct {
	ids map[int]bool
	n   int
}

// Take records the goroutines alive now.
func Take() Snapshot {
	s := Snapshot{ids: map[int]bool{}, n: runtime.NumGoroutine()}
	for _, g := range stacks() {
		s.ids[g.id] = true
	}
	return s
}

// Count is runtime.NumGoroutine at the time of the snapshot.
func (s Snapshot) Count() int { return s.n }

// Options tune Check. The zero value waits 5 seconds and ignores the
// goroutines of the testing package and of the runtime.
type Options struct {
	// Timeout bounds the wait for goroutines to end. Default 5s.
	Timeout time.Duration
	// Ignore lists substrings; a new goroutine whose stack contains one is
	// not a leak (for example a helper the test itself keeps running).
	Ignore []string
}

// Check fails t when goroutines started after s are still running once
// opt.Timeout has passed. It returns the number still running at the end
// (runtime.NumGoroutine), for reports.
func Check(t TB, s Snapshot, opt Options) int {
	t.Helper()
	if opt.Timeout <= 0 {
		opt.Timeout = 5 * time.Second
	}
	deadline := time.Now().Add(opt.Timeout)
	wait := time.Millisecond
	for {
		leaked := Leaked(s, opt.Ignore)
		if len(leaked) == 0 {
			return runtime.NumGoroutine()
		}
		if time.Now().After(deadline) {
			t.Errorf("leakcheck: %d goroutine(s) left running (%d before, %d now):\n\n%s",
				len(leaked), s.n, runtime.NumGoroutine(), strings.Join(leaked, "\n\n"))
			return runtime.NumGoroutine()
		}
		// Polling a condition, not hoping a sleep is long enough: goroutines
		// that were told to stop end in their own time.
		time.Sleep(wait)
		wait = min(2*wait, 50*time.Millisecond)
	}
}

// Leaked returns the stacks of goroutines alive now that were not in s and
// match none of ignore.
func Leaked(s Snapshot, ignore []string) []string {
	var out []string
	for _, g := range stacks() {
		if s.ids[g.id] || builtin(g.stack) {
			continue
		}
		skip := false
		for _, ig := range ignore {
			if strings.Contains(g.stack, ig) {
				skip = true
				break
			}
		}
		if !skip {
			out = append(out, g.stack)
		}
	}
	return out
}

// builtin reports goroutines that come and go on their own: the testing
// package's and the runtime's.
func builtin(stack string) bool {
	for _, s := range []string{
		"testing.(*T).Run(",
		"testing.tRunner(",
		"testing.(*M).",
		"testing.runTests",
		"runtime.goexit0",
		"runtime/trace.Start",
		"signal.signal_recv",
		"os/signal.loop",
		"runtime.ensureSigM",
		"created by runtime.gc",
		"runtime.ReadTrace",
	} {
		if strings.Contains(stack, s) {
			return true
		}
	}
	return false
}

type goroutine struct {
	id    int
	stack string
}

func stacks() []goroutine {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []goroutine
	for _, g := range strings.Split(string(buf), "\n\n") {
		g = strings.TrimSpace(g)
		rest, ok := strings.CutPrefix(g, "goroutine ")
		if !ok {
			continue
		}
		i := strings.IndexByte(rest, ' ')
		if i < 0 {
			continue
		}
		id, err := strconv.Atoi(rest[:i])
		if err != nil {
			continue
		}
		out = append(out, goroutine{id: id, stack: g})
	}
	return out
}
