package tokenmgr

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// Fault injection at the token endpoint.
//
// Every case runs the real x/oauth2 client credentials flow
// (ClientCredentials(ccConfig(srv))) against a real httptest token endpoint
// whose /token answers are replaced by a fault, through a dedicated
// Config.TokenHTTPClient whose dialer can be pointed at a closed port. Each
// case checks: no panic, no goroutine left after Close (by goroutine ID, so
// httptest's and other tests' goroutines do not blur it), a bounded number
// of token requests, and the error's type.
//
// Time is a faultClock, not a testing/synctest bubble: the faults need real
// sockets (a refused dial, a connection reset before the headers or in the
// body), and a goroutine waiting on a socket is not durably blocked, so a
// bubble's clock would not move while one is open. Retry waits inside one
// refresh (fetch's backoff)
// move the clock on at once; waits of the background loop between
// refreshes (the only sleeps on the Client's own context) park until the
// test moves the clock past them, so the test decides when each
// background attempt may run and can wait for the loop to settle.

// faultClock is the Client's clock and sleep in these tests.
type faultClock struct {
	mu     sync.Mutex
	t      time.Time
	bgCtx  context.Context // sleeps on this context park
	waits  []time.Duration // fetch's retry waits
	parked []*faultSleeper
}

type faultSleeper struct {
	until time.Time
	ch    chan struct{}
}

func (k *faultClock) Now() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.t
}

// Set moves the clock to t (never back) and wakes the parked sleeps that
// are due.
func (k *faultClock) Set(t time.Time) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if t.After(k.t) {
		k.t = t
	}
	k.wakeLocked()
}

func (k *faultClock) Add(d time.Duration) { k.Set(k.Now().Add(d)) }

func (k *faultClock) wakeLocked() {
	keep := k.parked[:0]
	for _, p := range k.parked {
		if !p.until.After(k.t) {
			close(p.ch)
		} else {
			keep = append(keep, p)
		}
	}
	k.parked = keep
}

// Parked is the number of background sleeps waiting for the clock.
func (k *faultClock) Parked() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.parked)
}

func (k *faultClock) Waits() []time.Duration {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]time.Duration(nil), k.waits...)
}

func (k *faultClock) sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	k.mu.Lock()
	if ctx != k.bgCtx {
		k.waits = append(k.waits, d)
		k.t = k.t.Add(d)
		k.wakeLocked()
		k.mu.Unlock()
		return nil
	}
	// A background wait. Even a zero one parks until the clock moves: on a
	// clock that only the test moves, returning at once would spin.
	p := &faultSleeper{until: k.t.Add(max(d, time.Nanosecond)), ch: make(chan struct{})}
	k.parked = append(k.parked, p)
	k.mu.Unlock()
	select {
	case <-p.ch:
		return nil
	case <-ctx.Done():
		k.mu.Lock()
		for i, q := range k.parked {
			if q == p {
				k.parked = append(k.parked[:i], k.parked[i+1:]...)
				break
			}
		}
		k.mu.Unlock()
		return ctx.Err()
	}
}

// faultHarness is a token endpoint with a switchable fault and a Client on
// it.
type faultHarness struct {
	t      *testing.T
	srv    *tokenmgrtest.Server
	c      *Client
	clk    *faultClock
	tr     *http.Transport
	dialTo atomic.Pointer[string]
	// sent counts the token requests the Client started (refused ones
	// too), when it started them. The server's count lags for a request
	// the Client gave up on before the server read it (a deadline passed
	// under load): it would land in whatever step the test is at by then.
	sent    atomic.Int64
	fault   atomic.Pointer[func(w http.ResponseWriter, r *http.Request) bool]
	release chan struct{} // closed at cleanup: hung handlers return
}

type faultOpts struct {
	cfg Config // Source and TokenHTTPClient are filled in
	// ahead starts the clock a day ahead of the real one. fetch stops
	// retrying when c.now()+wait passes the refresh's context deadline,
	// which is on the real clock, so with the clock ahead every refresh
	// makes exactly one attempt and token requests can be counted exactly.
	// Otherwise fetch retries, its waits moving the clock.
	ahead bool
	// lifetime of the tokens the endpoint issues; default 1h.
	lifetime time.Duration
}

func newFaultHarness(t *testing.T, o faultOpts) *faultHarness {
	t.Helper()
	before := runtime.NumGoroutine()
	noLeaks := leakCheck(t, 5*time.Second)
	h := &faultHarness{t: t, release: make(chan struct{})}
	t.Cleanup(func() {
		// Runs last: everything below has been torn down.
		noLeaks()
		t.Logf("goroutines: %d before, %d after", before, runtime.NumGoroutine())
	})
	if o.lifetime == 0 {
		o.lifetime = time.Hour
	}
	h.srv = tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: o.lifetime})
	t.Cleanup(h.srv.Close)
	h.srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/token" {
			return false
		}
		if f := h.fault.Load(); f != nil {
			return (*f)(w, r)
		}
		return false
	})
	t.Cleanup(func() { close(h.release) })

	h.tr = &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if p := h.dialTo.Load(); p != nil {
				addr = *p
			}
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	t.Cleanup(h.tr.CloseIdleConnections)

	cfg := o.cfg
	cfg.Source = ClientCredentials(ccConfig(h.srv))
	cfg.TokenHTTPClient = &http.Client{Transport: rtFunc(func(r *http.Request) (*http.Response, error) {
		h.sent.Add(1)
		return h.tr.RoundTrip(r)
	})}
	c, err := New(cfg)
	require.NoError(t, err)
	h.c = c
	base := time.Now()
	if o.ahead {
		base = base.Add(24 * time.Hour)
	}
	h.clk = &faultClock{t: base, bgCtx: c.ctx}
	c.now = h.clk.Now
	c.sleep = h.clk.sleep
	c.jitter = func(time.Duration) time.Duration { return 0 }
	t.Cleanup(func() {
		// Runs first. Close waits for its goroutines, so none may be left
		// the moment it returns.
		require.NoError(t, c.Close())
		requireNoClientGoroutines(t)
	})
	return h
}

// setFault makes /token answer with f (nil: normally).
func (h *faultHarness) setFault(f func(w http.ResponseWriter, r *http.Request)) {
	if f == nil {
		h.fault.Store(nil)
		return
	}
	h.setFaultOr(func(w http.ResponseWriter, r *http.Request) bool { f(w, r); return true })
}

// setFaultOr makes /token answer with f, which returns false to let the
// real endpoint answer that request.
func (h *faultHarness) setFaultOr(f func(w http.ResponseWriter, r *http.Request) bool) {
	h.fault.Store(&f)
}

// refuse sends token requests to a port nobody listens on.
func (h *faultHarness) refuse() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(h.t, err)
	addr := l.Addr().String()
	require.NoError(h.t, l.Close())
	h.dialTo.Store(&addr)
	h.tr.CloseIdleConnections() // or the kept-alive connection is reused
}

func (h *faultHarness) requests() int64 { return h.srv.TokenRequests.Load() }

// quiesce waits until the background loop has ended or is parked on the
// clock. It polls a condition, with a generous bound for -race.
func (h *faultHarness) quiesce() {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for h.c.bg.Load() && h.clk.Parked() == 0 {
		if time.Now().After(deadline) {
			require.Fail(h.t, "background refresh loop neither parked nor ended within 20s")
		}
		time.Sleep(time.Millisecond)
	}
}

// Faults.

func fault5xx(status int) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(status)
		fmt.Fprintf(w, "<html>%d upstream trouble</html>", status)
	}
}

func fault429(retryAfter string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", retryAfter)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		w.Write([]byte(`{"message":"slow down please"}`))
	}
}

func faultBody(status int, body string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		w.Write([]byte(body))
	}
}

// faultResetMidBody sends the headers and half a JSON token, then closes
// the connection. The close is an orderly one (FIN): an RST could overtake
// the data and surface before the headers are read, which would make the
// case flip between two outcomes.
func faultResetMidBody(w http.ResponseWriter, r *http.Request) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	body := `{"access_token":"at-half-written","token_type":"Bearer","expires_in":3600}`
	fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body[:len(body)/2])
	buf.Flush()
}

// faultResetBeforeHeaders closes the connection without a word.
func faultResetBeforeHeaders(w http.ResponseWriter, r *http.Request) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(err)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	conn.Close()
}

// faultHang blocks until the client gives up or the test ends.
func (h *faultHarness) faultHang(w http.ResponseWriter, r *http.Request) {
	select {
	case <-r.Context().Done():
	case <-h.release:
	}
}

// Error checks.

func wantTemporary(status int) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var te *TokenError
		require.ErrorAs(t, err, &te, "want a *TokenError, got %T: %v", err, err)
		assert.True(t, te.Temporary, "Temporary: %v", err)
		assert.Equal(t, status, te.StatusCode, "StatusCode: %v", err)
		assert.True(t, isTemporary(err))
	}
}

func wantPermanent(code string, status int) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		t.Helper()
		var te *TokenError
		require.ErrorAs(t, err, &te, "want a *TokenError, got %T: %v", err, err)
		assert.False(t, te.Temporary, "Temporary: %v", err)
		assert.Equal(t, code, te.Code)
		assert.Equal(t, status, te.StatusCode)
		assert.ErrorIs(t, err, &TokenError{Code: code})
	}
}

func wantBadResponse(t *testing.T, err error) {
	t.Helper()
	require.ErrorIs(t, err, ErrBadTokenResponse, "%T: %v", err, err)
	assert.False(t, isTemporary(err))
}

// The cases below found these bugs, fixed in d05df5e; they now assert the
// fixed behaviour:
//   - a 2xx answer x/oauth2 cannot parse ("oauth2: cannot parse json: …",
//     "oauth2: server response missing access_token") came back as a bare
//     error instead of ErrBadTokenResponse;
//   - any non-standard error code made a 429 or 5xx permanent;
//   - the background loop ignored Retry-After;
//   - with no usable token, a failed refresh was not remembered, so each
//     call sent a token request.
// (A body cut off mid-way was treated as permanent; fixed in 91ec50e.)

// TestFaultColdStart: no token yet, the endpoint misbehaves on the first
// request (or all of them).
func TestFaultColdStart(t *testing.T) {
	type tc struct {
		name string
		opts faultOpts
		// setup installs the fault; n counts calls to it when it wants to
		// fail only the first few.
		setup func(h *faultHarness)
		// check judges the Token call and the token requests it made.
		check func(t *testing.T, h *faultHarness, tok *oauth2.Token, err error, reqs int64)
	}
	burst := func(statuses ...int) func(h *faultHarness) {
		return func(h *faultHarness) {
			var n atomic.Int64
			h.setFaultOr(func(w http.ResponseWriter, r *http.Request) bool {
				i := n.Add(1) - 1
				if int(i) < len(statuses) {
					fault5xx(statuses[i])(w, r)
					return true
				}
				return false // from now on the real endpoint answers
			})
		}
	}
	// Temporary faults retry within one refresh, bounded by
	// RefreshTimeout (5s here, on fetch's backoff of 100ms growing 1.5x,
	// ±50%): a handful of requests, never one per millisecond.
	const maxRetries = 20
	boundedRetries := func(t *testing.T, reqs int64) {
		t.Helper()
		assert.GreaterOrEqual(t, reqs, int64(2), "a temporary fault is retried")
		assert.LessOrEqual(t, reqs, int64(maxRetries), "retries bounded by RefreshTimeout")
	}
	withTimeout := faultOpts{cfg: Config{RefreshTimeout: 5 * time.Second}}

	cases := []tc{
		{
			name: "connection refused", opts: withTimeout,
			setup: func(h *faultHarness) { h.refuse() },
			check: func(t *testing.T, h *faultHarness, _ *oauth2.Token, err error, reqs int64) {
				wantTemporary(0)(t, err)
				assert.ErrorIs(t, err, syscall.ECONNREFUSED)
				assert.Zero(t, reqs, "nothing reached the server")
				assert.NotEmpty(t, h.clk.Waits(), "retried with backoff")
				assert.LessOrEqual(t, len(h.clk.Waits()), maxRetries)
			},
		},
		{
			name: "reset before headers", opts: withTimeout,
			setup: func(h *faultHarness) { h.setFault(faultResetBeforeHeaders) },
			check: func(t *testing.T, h *faultHarness, _ *oauth2.Token, err error, reqs int64) {
				wantTemporary(0)(t, err)
				boundedRetries(t, reqs)
			},
		},
		{
			name: "reset mid-body", opts: withTimeout,
			setup: func(h *faultHarness) { h.setFault(faultResetMidBody) },
			check: func(t *testing.T, h *faultHarness, _ *oauth2.Token, err error, reqs int64) {
				// x/oauth2 flattens the read error to text ("oauth2: cannot
				// fetch token: unexpected EOF"); errors.go recognises it
				// (fixed in 91ec50e, found by this case).
				require.Error(t, err)
				assert.NotContains(t, err.Error(), "at-half-written")
				wantTemporary(0)(t, err)
				boundedRetries(t, reqs)
			},
		},
		{
			name: "5xx burst then success", opts: withTimeout,
			setup: burst(500, 502, 503),
			check: func(t *testing.T, h *faultHarness, tok *oauth2.Token, err error, reqs int64) {
				require.NoError(t, err)
				require.NotEmpty(t, tok.AccessToken)
				assert.EqualValues(t, 4, reqs, "three failures, then the token")
				assert.Len(t, h.clk.Waits(), 3)
				assert.Equal(t, Stats{Fetches: 1}, h.c.Stats())
			},
		},
		{
			name: "5xx sustained", opts: withTimeout,
			setup: func(h *faultHarness) { h.setFault(fault5xx(http.StatusServiceUnavailable)) },
			check: func(t *testing.T, h *faultHarness, _ *oauth2.Token, err error, reqs int64) {
				wantTemporary(http.StatusServiceUnavailable)(t, err)
				boundedRetries(t, reqs)
				assert.EqualValues(t, 1, h.c.Stats().FetchErrors)
			},
		},
		{
			name: "429 with Retry-After then success", opts: withTimeout,
			setup: func(h *faultHarness) {
				var n atomic.Int64
				h.setFaultOr(func(w http.ResponseWriter, r *http.Request) bool {
					if n.Add(1) == 1 {
						fault429("3")(w, r)
						return true
					}
					return false
				})
			},
			check: func(t *testing.T, h *faultHarness, tok *oauth2.Token, err error, reqs int64) {
				require.NoError(t, err)
				require.NotNil(t, tok)
				assert.EqualValues(t, 2, reqs)
				waits := h.clk.Waits()
				require.Len(t, waits, 1)
				assert.GreaterOrEqual(t, waits[0], 3*time.Second, "Retry-After honoured")
			},
		},
		{
			name: "429 with Retry-After past the refresh deadline", opts: withTimeout,
			setup: func(h *faultHarness) { h.setFault(fault429("7200")) },
			check: func(t *testing.T, h *faultHarness, _ *oauth2.Token, err error, reqs int64) {
				wantTemporary(http.StatusTooManyRequests)(t, err)
				var te *TokenError
				require.ErrorAs(t, err, &te)
				assert.Equal(t, time.Hour, te.RetryAfter, "capped at an hour")
				assert.EqualValues(t, 1, reqs, "no point waiting past the deadline")
				assert.Empty(t, h.clk.Waits())
			},
		},
		{
			name: "429 with a non-standard error code", opts: withTimeout,
			setup: func(h *faultHarness) { h.setFault(faultBody(429, `{"error":"rate_limit_exceeded"}`)) },
			check: func(t *testing.T, h *faultHarness, _ *oauth2.Token, err error, reqs int64) {
				wantTemporary(429)(t, err)
				var te *TokenError
				require.ErrorAs(t, err, &te)
				assert.Equal(t, "rate_limit_exceeded", te.Code)
				boundedRetries(t, reqs)
			},
		},
		{
			name: "503 with a non-standard error code", opts: withTimeout,
			setup: func(h *faultHarness) { h.setFault(faultBody(503, `{"error":"service_unavailable"}`)) },
			check: func(t *testing.T, h *faultHarness, _ *oauth2.Token, err error, reqs int64) {
				wantTemporary(503)(t, err)
				boundedRetries(t, reqs)
			},
		},
		{
			name:  "hang past TokenTimeout",
			opts:  faultOpts{cfg: Config{TokenTimeout: 200 * time.Millisecond, RefreshTimeout: 3 * time.Second}},
			setup: func(h *faultHarness) { h.setFault(h.faultHang) },
			check: func(t *testing.T, h *faultHarness, _ *oauth2.Token, err error, reqs int64) {
				wantTemporary(0)(t, err)
				assert.ErrorIs(t, err, errAttemptTimeout)
				boundedRetries(t, reqs)
			},
		},
		{
			name: "200 with garbage JSON", opts: withTimeout,
			setup: func(h *faultHarness) { h.setFault(faultBody(200, `{"access_token": "at-garbage`)) },
			check: func(t *testing.T, h *faultHarness, _ *oauth2.Token, err error, reqs int64) {
				require.Error(t, err)
				assert.EqualValues(t, 1, reqs, "garbage is not retried")
				wantBadResponse(t, err)
			},
		},
		{
			name: "200 with HTML", opts: withTimeout,
			setup: func(h *faultHarness) { h.setFault(faultBody(200, `<html>maintenance</html>`)) },
			check: func(t *testing.T, h *faultHarness, _ *oauth2.Token, err error, reqs int64) {
				require.Error(t, err)
				assert.EqualValues(t, 1, reqs)
				wantBadResponse(t, err)
			},
		},
		{
			name: "200 without access_token", opts: withTimeout,
			setup: func(h *faultHarness) { h.setFault(faultBody(200, `{"token_type":"Bearer","expires_in":3600}`)) },
			check: func(t *testing.T, h *faultHarness, _ *oauth2.Token, err error, reqs int64) {
				require.Error(t, err)
				assert.EqualValues(t, 1, reqs)
				wantBadResponse(t, err)
			},
		},
		{
			name: "200 with invalid_client", opts: withTimeout,
			setup: func(h *faultHarness) { h.setFault(faultBody(200, `{"error":"invalid_client"}`)) },
			check: func(t *testing.T, h *faultHarness, _ *oauth2.Token, err error, reqs int64) {
				wantPermanent("invalid_client", 200)(t, err)
				assert.ErrorIs(t, err, ErrInvalidClient)
				assert.EqualValues(t, 1, reqs, "permanent: not retried")
			},
		},
		{
			name: "401 invalid_client", opts: withTimeout,
			setup: func(h *faultHarness) {
				h.setFault(faultBody(401, `{"error":"invalid_client","error_description":"client authentication failed"}`))
			},
			check: func(t *testing.T, h *faultHarness, _ *oauth2.Token, err error, reqs int64) {
				wantPermanent("invalid_client", 401)(t, err)
				assert.EqualValues(t, 1, reqs)
			},
		},
		{
			name: "503 temporarily_unavailable", opts: withTimeout,
			setup: func(h *faultHarness) { h.setFault(faultBody(503, `{"error":"temporarily_unavailable"}`)) },
			check: func(t *testing.T, h *faultHarness, _ *oauth2.Token, err error, reqs int64) {
				wantTemporary(503)(t, err)
				boundedRetries(t, reqs)
			},
		},
	}

	// expires_in edge cases: a token that is unusable on arrival is
	// ErrBadTokenResponse; absurdly long lifetimes are clamped by x/oauth2
	// (to MaxInt32 seconds) and must not overflow the windows.
	ok := func(wantLife time.Duration) func(t *testing.T, h *faultHarness, tok *oauth2.Token, err error, reqs int64) {
		return func(t *testing.T, h *faultHarness, tok *oauth2.Token, err error, reqs int64) {
			require.NoError(t, err)
			assert.EqualValues(t, 1, reqs)
			e := h.c.cur.Load()
			require.NotNil(t, e)
			if wantLife == 0 {
				assert.True(t, tok.Expiry.IsZero(), "no expiry")
				assert.True(t, e.staleAt.IsZero() && e.expireAt.IsZero(), "never stale")
			} else {
				life := tok.Expiry.Sub(h.clk.Now())
				assert.InDelta(t, float64(wantLife), float64(life), float64(time.Minute), "lifetime %v", life)
				assert.True(t, e.staleAt.After(h.clk.Now()), "fresh on arrival")
				assert.True(t, e.expireAt.After(e.staleAt), "windows ordered")
				assert.True(t, e.expireAt.Before(tok.Expiry), "windows before expiry")
			}
			// Later in its life (a day on for the long ones) the token is
			// still served from memory: no request per call.
			if wantLife == 0 || wantLife > 48*time.Hour {
				h.clk.Add(24 * time.Hour)
			} else {
				h.clk.Add(wantLife / 2)
			}
			for range 100 {
				got, err := h.c.Token(context.Background())
				require.NoError(t, err)
				require.Equal(t, tok.AccessToken, got.AccessToken)
			}
			h.quiesce()
			assert.EqualValues(t, 1, h.requests(), "served from memory")
		}
	}
	expires := func(v string) func(h *faultHarness) {
		return func(h *faultHarness) {
			var n atomic.Int64
			h.setFault(func(w http.ResponseWriter, r *http.Request) {
				faultBody(200, fmt.Sprintf(`{"access_token":"at-expires-%d","token_type":"Bearer","expires_in":%s}`, n.Add(1), v))(w, r)
			})
		}
	}
	maxInt32Life := time.Duration(math.MaxInt32) * time.Second
	cases = append(cases,
		tc{name: "expires_in 0", opts: withTimeout, setup: expires("0"), check: ok(0)},
		tc{name: "expires_in negative", opts: withTimeout, setup: expires("-30"),
			check: func(t *testing.T, h *faultHarness, _ *oauth2.Token, err error, reqs int64) {
				wantBadResponse(t, err)
				assert.EqualValues(t, 1, reqs)
			}},
		tc{name: "expires_in 1000000000000000000", opts: withTimeout, setup: expires("1000000000000000000"), check: ok(maxInt32Life)},
		tc{name: "expires_in 9223372036854775807", opts: withTimeout, setup: expires("9223372036854775807"), check: ok(maxInt32Life)},
		tc{name: "expires_in numeric string", opts: withTimeout, setup: expires(`"3600"`), check: ok(time.Hour)},
	)
	for _, v := range []string{"1e18", "9223372036854775808", `"soon"`, `true`, `{}`} {
		cases = append(cases, tc{name: "expires_in " + v, opts: withTimeout, setup: expires(v),
			check: func(t *testing.T, h *faultHarness, tok *oauth2.Token, err error, reqs int64) {
				assert.EqualValues(t, 1, reqs, "not retried")
				if err == nil {
					return // accepted (clamped): also fine
				}
				wantBadResponse(t, err)
			}})
	}

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newFaultHarness(t, tc.opts)
			tc.setup(h)
			start := time.Now()
			tok, err := h.c.Token(context.Background())
			took := time.Since(start)
			t.Logf("token requests: %d, retry waits: %d, took %v, err: %v", h.requests(), len(h.clk.Waits()), took.Round(time.Millisecond), err)
			assert.Less(t, took, 15*time.Second)
			tc.check(t, h, tok, err, h.requests())
		})
	}
}

// TestFaultCloseDuringHang: Close returns promptly while a token request
// hangs, cancels it, and leaves nothing running; the caller gets an error.
func TestFaultCloseDuringHang(t *testing.T) {
	h := newFaultHarness(t, faultOpts{})
	arrived := make(chan struct{})
	var once sync.Once
	h.setFault(func(w http.ResponseWriter, r *http.Request) {
		once.Do(func() { close(arrived) })
		h.faultHang(w, r)
	})
	errc := make(chan error, 1)
	go func() { _, err := h.c.Token(context.Background()); errc <- err }()
	<-arrived
	start := time.Now()
	require.NoError(t, h.c.Close())
	assert.Less(t, time.Since(start), 5*time.Second, "Close cancels the hung request")
	err := <-errc
	require.Error(t, err)
	// After the caller has returned: requireNoClientGoroutines matches
	// refreshWait too, which the caller's own goroutine runs.
	requireNoClientGoroutines(t)
	assert.EqualValues(t, 1, h.requests())
	_, err = h.c.Token(context.Background())
	require.ErrorIs(t, err, ErrClosed)
}

// TestFaultConcurrentCallersOneFlight: 100 callers during a cold-start
// outage share one refresh: the retries are one flight's, not 100.
func TestFaultConcurrentCallersOneFlight(t *testing.T) {
	h := newFaultHarness(t, faultOpts{cfg: Config{RefreshTimeout: 5 * time.Second}})
	gate := make(chan struct{})
	var n atomic.Int64
	h.setFault(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1) == 1 {
			<-gate // hold the first attempt until every caller waits
		}
		fault5xx(503)(w, r)
	})
	const callers = 100
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.c.Token(context.Background())
			errs <- err
		}()
	}
	// Hold the first attempt until every caller waits on its flight.
	waitForStacks(t, "tokenmgr.(*engine[...]).refreshWait", callers)
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		wantTemporary(503)(t, err)
	}
	reqs := h.requests()
	t.Logf("%d callers, %d token requests", callers, reqs)
	assert.GreaterOrEqual(t, reqs, int64(2))
	assert.LessOrEqual(t, reqs, int64(20), "one flight's retries, not one per caller")
}

// waitForStacks waits until n goroutines have fn on their stack.
func waitForStacks(t *testing.T, fn string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	buf := make([]byte, 4<<20)
	for {
		m := runtime.Stack(buf, true)
		if got := strings.Count(string(buf[:m]), fn+"("); got >= n {
			return
		} else if time.Now().After(deadline) {
			require.Fail(t, "goroutines did not arrive", "%d goroutines in %s, want %d", got, fn, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestFaultNoStormWithoutToken: with no usable token, 4 goroutines making
// 50 calls each during an outage whose refreshes fail at once must not
// send a token request per round of calls (concurrent calls share one
// refresh, so a storm shows as about one request per call of each
// goroutine).
func TestFaultNoStormWithoutToken(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fault func(w http.ResponseWriter, r *http.Request)
	}{
		{"429 Retry-After 120", fault429("120")}, // past the default 1m RefreshTimeout
		{"401 invalid_client", faultBody(401, `{"error":"invalid_client"}`)},
	} {
		for _, state := range []string{"cold", "expired"} {
			t.Run(tc.name+" "+state, func(t *testing.T) {
				// The real clock: nothing moves it on but time itself, and
				// the whole run takes well under Retry-After.
				h := newFaultHarness(t, faultOpts{})
				h.c.now, h.c.sleep = time.Now, sleepCtx
				ctx := context.Background()
				if state == "expired" {
					_, err := h.c.Token(ctx)
					require.NoError(t, err)
					e := h.c.cur.Load()
					// Past the expiry window: a copy of the entry whose
					// windows are over.
					old := &entry[*oauth2.Token]{tok: e.tok, id: e.id, auth: e.auth, obtained: e.obtained.Add(-2 * time.Hour),
						staleAt: time.Now().Add(-time.Hour), expireAt: time.Now().Add(-time.Minute)}
					h.c.cur.Store(old)
				}
				h.setFault(tc.fault)
				n0 := h.requests()
				const goroutines, calls = 4, 50
				var wg sync.WaitGroup
				var failed atomic.Int64
				start := time.Now()
				for range goroutines {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for range calls {
							if _, err := h.c.Token(ctx); err != nil {
								failed.Add(1)
							}
						}
					}()
				}
				wg.Wait()
				reqs := h.requests() - n0
				t.Logf("%d calls in %v: %d failed, %d token requests", goroutines*calls, time.Since(start).Round(time.Millisecond), failed.Load(), reqs)
				assert.EqualValues(t, goroutines*calls, failed.Load())
				// A failed refresh is remembered (1s..30s, or Retry-After):
				// the first round of calls sends one request, the rest get
				// its error.
				assert.LessOrEqual(t, reqs, int64(goroutines), "no token request per call")
			})
		}
	}
}

// TestFaultStaleBurstRecovers: a burst of 5xx in the stale window is
// ridden out by the background loop: the old token serves throughout, the
// first success replaces it, and the endpoint sees the burst plus one.
func TestFaultStaleBurstRecovers(t *testing.T) {
	h := newFaultHarness(t, faultOpts{ahead: true, cfg: Config{RefreshTimeout: 2 * time.Second}})
	ctx := context.Background()
	tok0, err := h.c.Token(ctx)
	require.NoError(t, err)
	e0 := h.c.cur.Load()
	statuses := []int{500, 502, 503, 504}
	var n atomic.Int64
	h.setFaultOr(func(w http.ResponseWriter, r *http.Request) bool {
		i := n.Add(1) - 1
		if int(i) < len(statuses) {
			fault5xx(statuses[i])(w, r)
			return true
		}
		return false
	})
	before := h.requests()
	var tok1 *oauth2.Token
	for at := e0.staleAt; at.Before(e0.expireAt); at = at.Add(time.Second) {
		h.clk.Set(at)
		h.quiesce()
		got, err := h.c.Token(ctx)
		require.NoError(t, err)
		h.quiesce()
		if got != tok0 {
			tok1 = got
			break
		}
	}
	require.NotNil(t, tok1, "recovered before expiry")
	assert.NotEqual(t, tok0.AccessToken, tok1.AccessToken)
	assert.EqualValues(t, len(statuses)+1, h.requests()-before, "the burst, then one success")
	got, err := h.c.Token(ctx)
	require.NoError(t, err)
	assert.Same(t, tok1, got, "the new token is in service")
	assert.False(t, h.c.bg.Load(), "the loop ended")
	assert.Equal(t, int64(len(statuses)), h.c.Stats().FetchErrors)
}
