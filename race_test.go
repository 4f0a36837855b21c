//go:build race

package tokenmgr

// raceEnabled reports whether the race detector is on: figures from a run
// with it are not comparable with one without.
const raceEnabled = true
