//go:build race

package leakcheck

// Race reports whether the race detector is on (figures from a run with it
// are not comparable with one without).
const Race = true
