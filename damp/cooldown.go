package damp

import (
	"sync"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Cooldown holds off a repeated action after failures in a row: each
// failure pushes the end of the cooldown out by a backoff that doubles
// from first up to max (github.com/cenkalti/backoff/v4, without its own
// randomisation: the caller adds its jitter on top, so tests can zero it);
// a success resets it. It serves both the failure backoff (callers without
// a token get a failed refresh's error instead of asking again) and the
// rejection damping of [Hosts]. Safe for concurrent use.
type Cooldown struct {
	mu    sync.Mutex
	b     *backoff.ExponentialBackOff
	until time.Time
}

// NewCooldown returns a Cooldown whose backoff doubles from first to max.
func NewCooldown(first, max time.Duration) *Cooldown {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = first
	b.MaxInterval = max
	b.Multiplier = 2
	b.RandomizationFactor = 0
	b.MaxElapsedTime = 0
	b.Reset()
	return &Cooldown{b: b}
}

// Fail notes a failure at now and returns how long the cooldown lasts: the
// next backoff plus jitter, or override when it is positive (a
// Retry-After).
func (c *Cooldown) Fail(now time.Time, jitter func(time.Duration) time.Duration, override time.Duration) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.b.NextBackOff()
	if jitter != nil {
		d += jitter(d / 5)
	}
	if override > 0 {
		d = override
	}
	c.until = now.Add(d)
	return d
}

// Active reports whether the cooldown still runs at now.
func (c *Cooldown) Active(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return now.Before(c.until)
}

// Reset forgets the failures: the next one starts from first again.
func (c *Cooldown) Reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.b.Reset()
	c.until = time.Time{}
}
