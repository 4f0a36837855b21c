package tokenmgr

import (
	"log/slog"
	"net/http"
	"runtime"
	"slices"
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

func ccConfig(s *tokenmgrtest.Server) *clientcredentials.Config {
	// AuthStyleInHeader: auto-detection would send every failing request
	// twice and blur the request counts.
	return &clientcredentials.Config{ClientID: s.ClientID, ClientSecret: s.ClientSecret, TokenURL: s.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}
}

// newTestClient returns a Client on cfg without jitter, closed at the end
// of the test, which then checks that none of its goroutines is left.
func newTestClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	c, err := New(cfg)
	require.NoError(t, err)
	c.jitter = func(time.Duration) time.Duration { return 0 }
	t.Cleanup(func() {
		require.NoError(t, c.Close())
		requireNoClientGoroutines(t)
	})
	return c
}

// newBubbleClient is newTestClient for a test in a testing/synctest
// bubble, where time is fake and moves on whenever every goroutine of the
// bubble waits: unless cfg says otherwise, token requests reach srv
// through its in-memory transport, since a goroutine waiting on a socket
// would keep the clock from moving. srv must be created outside the bubble.
func newBubbleClient(t *testing.T, srv *tokenmgrtest.Server, cfg Config) *Client {
	t.Helper()
	if cfg.TokenHTTPClient == nil {
		cfg.TokenHTTPClient = inMemoryHTTP(srv)
	}
	return newTestClient(t, cfg)
}

// inMemoryHTTP is an http.Client that reaches srv in memory.
func inMemoryHTTP(srv *tokenmgrtest.Server) *http.Client {
	return &http.Client{Transport: srv.InMemoryTransport()}
}

// requestTimes records the time of each token request srv answers, for a
// test in a synctest bubble: the waits between them are the Client's.
// It installs srv's hook; next, when not nil, answers after it.
func requestTimes(srv *tokenmgrtest.Server, next func(w http.ResponseWriter, r *http.Request) bool) func() []time.Time {
	var mu sync.Mutex
	var at []time.Time
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" {
			mu.Lock()
			at = append(at, time.Now())
			mu.Unlock()
		}
		return next != nil && next(w, r)
	})
	return func() []time.Time {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(at)
	}
}

// waits returns the gaps between consecutive times.
func waits(at []time.Time) []time.Duration {
	var d []time.Duration
	for i := 1; i < len(at); i++ {
		d = append(d, at[i].Sub(at[i-1]))
	}
	return d
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
// Client's code. Close waits for its goroutines, so none may remain but
// one that has given back its count and is returning, which is given a
// moment to end.
func requireNoClientGoroutines(t *testing.T) {
	t.Helper()
	buf := make([]byte, 1<<20)
	for try := 0; ; try++ {
		left := ""
		n := runtime.Stack(buf, true)
		for _, g := range strings.Split(string(buf[:n]), "\n\n") {
			if strings.Contains(g, "tokenmgr.(*engine[...]).backgroundLoop(") || strings.Contains(g, "tokenmgr.(*engine[...]).refresh(") || strings.Contains(g, "tokenmgr.(*engine[...]).run(") {
				left = g
			}
		}
		if left == "" {
			return
		}
		if try == 200 {
			require.Fail(t, "goroutine left after Close", left)
		}
		time.Sleep(5 * time.Millisecond) // in a synctest bubble, until the others block

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
