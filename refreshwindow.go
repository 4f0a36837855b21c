package tokenmgr

import (
	"math/rand/v2"
	"time"
)

// Refresh windows: when a token turns stale (a background refresh starts)
// and expired (callers wait for a refresh). The rule is documented on
// Client; refreshState (refresh.go) says where a token stands at a moment.
const (
	maxAutoRefreshBefore = 5 * time.Minute
	maxAutoExpiryDelta   = 10 * time.Second
)

// windows returns when a token obtained at obtained and expiring at expiry
// turns stale and when it counts as expired. refreshBefore and expiryDelta
// are the configured values, zero meaning automatic.
func windows(obtained, expiry time.Time, refreshBefore, expiryDelta time.Duration, jitter func(time.Duration) time.Duration) (staleAt, expireAt time.Time) {
	if expiry.IsZero() {
		return time.Time{}, time.Time{}
	}
	// Compare by the wall clock: a monotonic reading stops while the
	// machine sleeps, and a token must not look fresh after a suspend.
	expiry = expiry.Round(0)
	life := expiry.Sub(obtained)
	if life <= 0 || obtained.IsZero() {
		// Lifetime unknown (a token restored from elsewhere) or already over:
		// fall back to the caps, which suit the common one-hour token.
		life = time.Hour
	}
	rb := refreshBefore
	if rb <= 0 {
		rb = min(life/4, maxAutoRefreshBefore)
		rb += jitter(rb / 10)
	} else {
		rb = min(rb, life/2)
	}
	ed := expiryDelta
	if ed <= 0 {
		ed = min(life/20, maxAutoExpiryDelta)
	} else {
		ed = min(ed, life/4)
	}
	if rb < ed {
		rb = ed
	}
	return expiry.Add(-rb), expiry.Add(-ed)
}

// engineClock returns the clock an engine reads: wallClock, unless time
// runs fake (a testing/synctest bubble, whose time.Now starts in 2000
// while wallClock reads the machine's clock), where the engine must keep
// time.Now to run on the bubble's time.
func engineClock() func() time.Time {
	if d := time.Since(wallClock()); d > time.Second || d < -time.Second {
		return time.Now
	}
	return wallClock
}

// randJitter returns a random duration in [0, max).
func randJitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return rand.N(max)
}
