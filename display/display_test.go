package display

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		1500 * time.Millisecond:             "2s",
		59*time.Minute + 20*time.Second:     "59m20s",
		59*time.Minute + 50*time.Second:     "1h",
		2*time.Hour + 5*time.Minute + 3e9:   "2h5m",
		76 * time.Hour:                      "3d4h",
		48 * time.Hour:                      "2d",
		20 * time.Minute:                    "20m0s",
		250 * time.Millisecond:              "250ms",
		time.Duration(0):                    "0s",
		23*time.Hour + 50*time.Minute + 1e9: "1d",
	} {
		assert.Equal(t, want, Duration(d), "Duration(%v)", d)
	}
}

func TestWords(t *testing.T) {
	now := time.Now()
	assert.Equal(t, "1m30s ago", Relative(now.Add(-90*time.Second), now))
	assert.Equal(t, "in 2m0s", Relative(now.Add(2*time.Minute), now))
	assert.Equal(t, "a b c", OneLine("a\nb\r\n c"))
	assert.Equal(t, "Bearer", TokenType("bearer"))
	assert.Equal(t, "DPoP", TokenType("DPoP"))
	assert.Equal(t, "none", StoreName(nil))
	assert.Equal(t, "2026-01-02T03:04:05Z", Stamp(time.Date(2026, 1, 2, 4, 4, 5, 0, time.FixedZone("x", 3600))))
}

func TestURL(t *testing.T) {
	assert.Equal(t, "https://auth.example/token?x=1", URL("https://auth.example/token?x=1"))
	assert.Equal(t, "https://user:xxxxx@auth.example/token", URL("https://user:pa55word@auth.example/token"))
	assert.Equal(t, "(unparsable URL)", URL("http://[::1"))
}
