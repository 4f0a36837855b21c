package tokenmgr

import (
	"math/rand/v2"
	"time"
)

// Refresh windows.
//
// A token fetched at t0 that expires at t0+L is served in three states:
//
//	fresh   now < expiry - refreshBefore           served from memory
//	stale   now < expiry - expiryDelta             served, one background refresh starts
//	expired otherwise (or no token)                callers wait for one shared refresh
//
// With RefreshBefore and ExpiryDelta left at zero both scale with the
// lifetime L, so a 4-second token and a 1-hour token are both refreshed in
// good time and neither looks expired from birth:
//
//	refreshBefore = min(L/4, 5m) + jitter of up to 10% of it
//	expiryDelta   = min(L/20, 10s)
//
// A 1-hour token is refreshed 5m to 5m30s before expiry and considered
// expired 10s before; a 4-second token is refreshed 1s–1.1s before and
// expired 200ms before. Set explicitly, the two are used as given but
// capped at L/2 (refreshBefore) and L/4 (expiryDelta), so a short-lived token
// is always served for part of its life instead of being fetched on every
// call. A token without an expiry never goes stale.
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

// randJitter returns a random duration in [0, max).
func randJitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return rand.N(max)
}
