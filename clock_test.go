package tokenmgr

import (
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
)

// The engine reads the wall clock alone (on linux/amd64, without the
// monotonic read time.Now adds), which agrees with time.Now; inside a
// testing/synctest bubble it keeps time.Now, the bubble's fake time.
func TestEngineClock(t *testing.T) {
	w := wallClock()
	assert.InDelta(t, 0, time.Since(w).Seconds(), 1, "the machine's wall clock")
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		assert.NotContains(t, engineClock()().String(), "m=", "no monotonic reading")
	}
	synctest.Test(t, func(t *testing.T) {
		now := engineClock()
		assert.Equal(t, time.Now(), now(), "the bubble's time")
		time.Sleep(time.Hour)
		assert.Equal(t, time.Now(), now(), "and it moves with it")
		assert.True(t, strings.HasPrefix(now().UTC().String(), "2000-01-01"))
	})
}
