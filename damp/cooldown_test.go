package damp

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestCooldownDoublesToItsCap: the one backoff behind the failure backoff
// and the rejection damping doubles from first to max, takes an override
// (Retry-After) as it is, adds the jitter on top, and starts over after a
// reset.
func TestCooldownDoublesToItsCap(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := NewCooldown(time.Second, 30*time.Second)
	var got []time.Duration
	for range 8 {
		got = append(got, c.Fail(now, nil, 0))
	}
	s := time.Second
	assert.Equal(t, []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 30 * s, 30 * s, 30 * s}, got)
	assert.True(t, c.Active(now.Add(29*time.Second)))
	assert.False(t, c.Active(now.Add(30*time.Second)))

	assert.Equal(t, 90*time.Second, c.Fail(now, nil, 90*time.Second), "an override wins")
	assert.True(t, c.Active(now.Add(89*time.Second)))

	c.Reset()
	assert.False(t, c.Active(now))
	half := func(d time.Duration) time.Duration { return d / 2 }
	assert.Equal(t, time.Second+100*time.Millisecond, c.Fail(now, half, 0), "jitter (up to a fifth) on top")
}
