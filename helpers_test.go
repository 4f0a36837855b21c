package tokenmgr

import (
	"context"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// fakeClock is a settable clock for the timing rules.
type fakeClock struct {
	mu      sync.Mutex
	t       time.Time
	changed chan struct{} // closed and replaced by every Add
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Now(), changed: make(chan struct{})} }

// Sleep blocks until the clock has been moved on by d (or ctx ends): a
// sleep in fake time, for goroutines the test does not drive itself.
func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	f.mu.Lock()
	until := f.t.Add(d)
	f.mu.Unlock()
	for {
		f.mu.Lock()
		now, ch := f.t, f.changed
		f.mu.Unlock()
		if !now.Before(until) {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	close(f.changed)
	f.changed = make(chan struct{})
	f.mu.Unlock()
}

func ccConfig(s *tokenmgrtest.Server) *clientcredentials.Config {
	// AuthStyleInHeader: auto-detection would send every failing request
	// twice and blur the request counts.
	return &clientcredentials.Config{ClientID: s.ClientID, ClientSecret: s.ClientSecret, TokenURL: s.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}
}

// newTestClient returns a Client on srv's client credentials with a fake
// clock, no jitter and instant backoff sleeps (recorded in *sleeps).
func newTestClient(t *testing.T, cfg Config, clk *fakeClock) (*Client, *sleepRecorder) {
	t.Helper()
	c, err := New(cfg)
	require.NoError(t, err)
	rec := &sleepRecorder{clk: clk}
	if clk != nil {
		c.now = clk.Now
		c.sleep = rec.sleep
	}
	c.jitter = func(time.Duration) time.Duration { return 0 }
	t.Cleanup(func() {
		require.NoError(t, c.Close())
		requireNoClientGoroutines(t)
	})
	return c, rec
}

// sleepRecorder stands in for time.Sleep: it records the wait and moves
// the fake clock on by it.
type sleepRecorder struct {
	mu    sync.Mutex
	clk   *fakeClock
	waits []time.Duration
}

func (s *sleepRecorder) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	s.waits = append(s.waits, d)
	s.mu.Unlock()
	s.clk.Add(d)
	return nil
}

func (s *sleepRecorder) Waits() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

// leakCheck records the goroutines alive now and returns a check, to run
// once the test has torn everything down, that fails t if a goroutine
// started since is still running after timeout (goleak, told apart by ID,
// so goroutines of earlier tests that end meanwhile do not mask a leak).
func leakCheck(t testing.TB, timeout time.Duration) func() {
	t.Helper()
	current := goleak.IgnoreCurrent()
	return func() {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for {
			// Find retries for a while itself: goroutines that were told to
			// stop end in their own time.
			err := goleak.Find(current)
			if err == nil {
				return
			}
			if time.Now().After(deadline) {
				assert.Fail(t, "goroutines left running", "after %v: %v", timeout, err)
				return
			}
		}
	}
}

// TestLeakCheck: the check fails on a goroutine started after it was
// armed, and passes once that goroutine has ended.
func TestLeakCheck(t *testing.T) {
	rec := &errRecorder{TB: t}
	check := leakCheck(rec, time.Second)
	stop := make(chan struct{})
	go func() { <-stop }()
	check()
	assert.True(t, rec.failed, "a goroutine left running is reported")
	close(stop)
	rec.failed = false
	check()
	assert.False(t, rec.failed, "no goroutine left")
}

type errRecorder struct {
	testing.TB
	failed bool
}

func (r *errRecorder) Errorf(string, ...any) { r.failed = true }

// requireNoClientGoroutines fails if a goroutine is still running the
// Client's code. Close waits for its goroutines, so none may remain.
func requireNoClientGoroutines(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	for _, g := range strings.Split(string(buf[:n]), "\n\n") {
		if strings.Contains(g, "tokenmgr.(*Client).backgroundLoop") || strings.Contains(g, "tokenmgr.(*Client).refresh") {
			require.Fail(t, "goroutine left after Close", g)
		}
	}
}

func newTextLogger(w *strings.Builder) *slog.Logger {
	var mu sync.Mutex
	return slog.New(slog.NewTextHandler(lockedWriter{&mu, w}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
