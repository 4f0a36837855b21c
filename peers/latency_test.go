package peers_test

// Side-by-side behaviour at the refresh boundary against golang.org/x/oauth2
// and cloud.google.com/go/auth.
//
// The latency tests run in real time (they measure how long callers wait)
// against a token endpoint that takes 300ms to answer; they assert only
// ratios with a wide margin and end as soon as every side has moved to its
// next token.

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/auth"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

const (
	peerEndpointLatency = 300 * time.Millisecond // how long the token endpoint takes
	peerCallers         = 8
	peerPause           = time.Millisecond      // between one caller's calls
	peerSlow            = 50 * time.Millisecond // a call this long waited for something
	peerGuard           = 15 * time.Second      // no side may take longer than this
)

func peerCCConfig(s *tokenmgrtest.Server) *clientcredentials.Config {
	return &clientcredentials.Config{ClientID: s.ClientID, ClientSecret: s.ClientSecret, TokenURL: s.TokenURL()}
}

// peerCCSource asks the endpoint on every call: the source x/oauth2's
// ReuseTokenSourceWithExpiry is meant to wrap.
type peerCCSource struct{ cfg *clientcredentials.Config }

func (s peerCCSource) Token() (*oauth2.Token, error) { return s.cfg.Token(context.Background()) }

// peerGoogleSource is a Google TokenProvider over the same client
// credentials request.
func peerGoogleSource(cfg *clientcredentials.Config) auth.TokenProvider {
	return googleProvider(func(ctx context.Context) (*auth.Token, error) {
		t, err := cfg.Token(ctx)
		if err != nil {
			return nil, err
		}
		return &auth.Token{Value: t.AccessToken, Type: t.TokenType, Expiry: t.Expiry}, nil
	})
}

// peerEndpoint makes srv's token endpoint take latency to answer, and
// answer 500 to the token requests (numbered from 1) that fail says.
func peerEndpoint(srv *tokenmgrtest.Server, latency time.Duration, fail func(n int64) bool) *atomic.Int64 {
	var n atomic.Int64
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/token" {
			return false
		}
		i := n.Add(1)
		time.Sleep(latency)
		if fail != nil && fail(i) {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return true
		}
		return false
	})
	return &n
}

// peerCaller is what one calling goroutine saw.
type peerCaller struct {
	calls   int
	slow    int           // calls that took peerSlow or more
	worst   time.Duration // longest call
	minLeft time.Duration // least lifetime left on a token handed out
	err     error         // first error
}

// peerSide is one library under test: call makes one call and returns
// the token value used and its expiry.
type peerSide struct {
	name string
	call func(ctx context.Context) (value string, expiry time.Time, err error)
}

// peerResult sums up a side's run.
type peerResult struct {
	name          string
	calls, slow   int
	slowCallers   int
	worst         time.Duration
	minLeft       time.Duration
	errs          []error
	switched      bool          // callers moved to a new token
	switchedAfter time.Duration // since the run began
}

func (r peerResult) String() string {
	s := fmt.Sprintf("%-8s worst %8v  calls %6d  calls ≥%v: %4d (%d of %d callers)",
		r.name, r.worst.Round(time.Microsecond), r.calls, peerSlow, r.slow, r.slowCallers, peerCallers)
	if r.minLeft < time.Hour {
		s += fmt.Sprintf("  least lifetime left on a token served: %v", r.minLeft.Round(time.Millisecond))
	}
	return s
}

// peerRun has peerCallers goroutines call s continuously (pausing
// peerPause between calls) until they have been served a token other than
// first for tail, or peerGuard passes.
func peerRun(s peerSide, first string, tail time.Duration) peerResult {
	start := time.Now()
	stop := make(chan struct{})
	switched := make(chan time.Duration, 1)
	var once sync.Once
	callers := make([]peerCaller, peerCallers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func(pc *peerCaller) {
			defer wg.Done()
			pc.minLeft = time.Duration(1<<63 - 1)
			for {
				select {
				case <-stop:
					return
				default:
				}
				t0 := time.Now()
				v, exp, err := s.call(context.Background())
				t1 := time.Now()
				d := t1.Sub(t0)
				pc.calls++
				if d > pc.worst {
					pc.worst = d
				}
				if d >= peerSlow {
					pc.slow++
				}
				if err != nil {
					if pc.err == nil {
						pc.err = err
					}
				} else {
					if left := exp.Sub(t1); !exp.IsZero() && left < pc.minLeft {
						pc.minLeft = left
					}
					if v != first {
						once.Do(func() { switched <- t1.Sub(start) })
					}
				}
				time.Sleep(peerPause)
			}
		}(&callers[i])
	}
	r := peerResult{name: s.name, minLeft: time.Duration(1<<63 - 1)}
	select {
	case r.switchedAfter = <-switched:
		r.switched = true
		time.Sleep(tail) // keep calling a little past the switch
	case <-time.After(peerGuard):
	}
	close(stop)
	wg.Wait()
	for _, pc := range callers {
		r.calls += pc.calls
		r.slow += pc.slow
		if pc.slow > 0 {
			r.slowCallers++
		}
		r.worst = max(r.worst, pc.worst)
		r.minLeft = min(r.minLeft, pc.minLeft)
		if pc.err != nil {
			r.errs = append(r.errs, pc.err)
		}
	}
	return r
}

// peerRunAll runs the sides at once, so they see the same machine load.
func peerRunAll(firsts []string, tail time.Duration, sides ...peerSide) []peerResult {
	res := make([]peerResult, len(sides))
	var wg sync.WaitGroup
	for i, s := range sides {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = peerRun(s, firsts[i], tail)
		}()
	}
	wg.Wait()
	return res
}

// TestRefreshBoundaryLatency crosses the moment a 3-second token enters its
// 1-second early-refresh window, with 8 goroutines sending requests through
// each library's transport, the endpoint taking 300ms. x/oauth2 refreshes
// under its mutex, so every caller waits for the token request; tokenmgr
// keeps serving the current token while one background refresh runs.
func TestRefreshBoundaryLatency(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time latency measurement")
	}
	peerRatio(t, "oauth2", boundaryOnce)
}

// peerRatio runs measure (which reports tokenmgr's and a peer's worst
// caller latency) and requires tokenmgr's to be under a fifth of the
// peer's. A slow machine can stall any goroutine for a while, tokenmgr's
// included, so a missed ratio is measured once more before it fails; a
// tokenmgr that really made callers wait would miss it both times.
func peerRatio(t *testing.T, peer string, measure func(t *testing.T) (tm, other time.Duration)) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		tm, other := measure(t)
		if t.Failed() || tm*5 < other {
			return
		}
		if attempt == 2 {
			assert.Fail(t, "tokenmgr made callers wait", "tokenmgr worst %v is not under 1/5 of %s's %v", tm, peer, other)
			return
		}
		t.Logf("tokenmgr worst %v is not under 1/5 of %s's %v: measuring once more", tm, peer, other)
	}
}

func boundaryOnce(t *testing.T) (tmWorst, oaWorst time.Duration) {
	const lifetime, early = 3 * time.Second, time.Second

	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: lifetime})
	defer srv.Close()
	peerEndpoint(srv, peerEndpointLatency, nil)
	cc := peerCCConfig(srv)

	c, err := tokenmgr.New(tokenmgr.Config{Source: tokenmgr.ClientCredentials(cc), RefreshBefore: early, ExpiryDelta: 100 * time.Millisecond})
	require.NoError(t, err)
	defer c.Close()
	oaSrc := oauth2.ReuseTokenSourceWithExpiry(nil, peerCCSource{cc}, early)

	tmRT := newPeerSwitchBase()
	tmT := c.Transport(tmRT)
	oaRT := newPeerSwitchBase()
	oaT := &oauth2.Transport{Source: oaSrc, Base: oaRT}

	// Warm both up (one token request each, in parallel).
	var tm0, oa0 *oauth2.Token
	var tmErr, oaErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); tm0, tmErr = c.Token(context.Background()) }()
	go func() { defer wg.Done(); oa0, oaErr = oaSrc.Token() }()
	wg.Wait()
	require.NoError(t, tmErr, "warm-up tokenmgr")
	require.NoError(t, oaErr, "warm-up oauth2")

	res := peerRunAll([]string{"Bearer " + tm0.AccessToken, "Bearer " + oa0.AccessToken}, 200*time.Millisecond,
		tmRT.side("tokenmgr", tmT), oaRT.side("oauth2", oaT))
	tm, oa := res[0], res[1]
	t.Logf("endpoint latency %v, token lifetime %v, early window %v, %d callers", peerEndpointLatency, lifetime, early, peerCallers)
	for _, r := range res {
		t.Logf("%v; moved to the next token %v after start", r, r.switchedAfter.Round(time.Millisecond))
	}

	for _, r := range res {
		assert.Empty(t, r.errs, "%s: callers saw errors", r.name)
		require.True(t, r.switched, "%s never moved to a new token within %v", r.name, peerGuard)
	}
	require.GreaterOrEqual(t, oa.worst, peerEndpointLatency*9/10,
		"oauth2's worst call: the run did not make anyone wait for the %v endpoint; the scenario is broken", peerEndpointLatency)
	st := c.Stats()
	assert.EqualValues(t, 2, st.Fetches, "tokenmgr fetches: initial, early")
	assert.Zero(t, st.FetchErrors)
	return tm.worst, oa.worst
}

// peerSwitchBase is a no-op base that tells its caller, per request, the
// Authorization header the transport above it attached. Calls are made
// one request at a time per goroutine, so it hands the header back through
// the request's context.
type peerSwitchBase struct{ benchNoop }

type peerAuthKey struct{}

func newPeerSwitchBase() *peerSwitchBase { return &peerSwitchBase{newBenchNoop()} }

func (b *peerSwitchBase) RoundTrip(req *http.Request) (*http.Response, error) {
	if p, ok := req.Context().Value(peerAuthKey{}).(*string); ok {
		*p = req.Header.Get("Authorization")
	}
	return b.resp, nil
}

func (b *peerSwitchBase) side(name string, rt http.RoundTripper) peerSide {
	return peerSide{name: name, call: func(ctx context.Context) (string, time.Time, error) {
		var got string
		req, err := http.NewRequestWithContext(context.WithValue(ctx, peerAuthKey{}, &got), http.MethodGet, benchURL, nil)
		if err != nil {
			return "", time.Time{}, err
		}
		resp, err := rt.RoundTrip(req)
		if err != nil {
			return "", time.Time{}, err
		}
		if resp.StatusCode != http.StatusOK {
			return "", time.Time{}, fmt.Errorf("status %d", resp.StatusCode)
		}
		return got, time.Time{}, nil // expiry not seen at this level
	}}
}

// TestBackgroundRefreshFailurePeer: the first early refresh fails (500),
// later requests succeed. Google's cached provider gives up refreshing in
// the background after one failed attempt and serves the old token to its
// very end, then makes callers wait for a token request under its mutex.
// tokenmgr retries in the background, bounded by the time left, and
// replaces the token before expiry without anyone waiting.
func TestBackgroundRefreshFailurePeer(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time latency measurement")
	}
	peerRatio(t, "google", backgroundFailureOnce)
}

func backgroundFailureOnce(t *testing.T) (tmWorst, ggWorst time.Duration) {
	const lifetime, early = 3 * time.Second, 1500 * time.Millisecond
	failSecond := func(n int64) bool { return n == 2 }

	tmSrv := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: lifetime})
	defer tmSrv.Close()
	tmReqs := peerEndpoint(tmSrv, peerEndpointLatency, failSecond)
	var evMu sync.Mutex
	var events []tokenmgr.RefreshEvent
	c, err := tokenmgr.New(tokenmgr.Config{
		Source:        tokenmgr.ClientCredentials(peerCCConfig(tmSrv)),
		RefreshBefore: early,
		ExpiryDelta:   200 * time.Millisecond,
		OnRefresh: func(ev tokenmgr.RefreshEvent) {
			evMu.Lock()
			events = append(events, ev)
			evMu.Unlock()
		},
	})
	require.NoError(t, err)
	defer c.Close()

	ggSrv := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: lifetime})
	defer ggSrv.Close()
	ggReqs := peerEndpoint(ggSrv, peerEndpointLatency, failSecond)
	gg := auth.NewCachedTokenProvider(peerGoogleSource(peerCCConfig(ggSrv)), &auth.CachedTokenProviderOptions{ExpireEarly: early})

	var tm0 *oauth2.Token
	var gg0 *auth.Token
	var tmErr, ggErr error
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); tm0, tmErr = c.Token(context.Background()) }()
	go func() { defer wg.Done(); gg0, ggErr = gg.Token(context.Background()) }()
	wg.Wait()
	require.NoError(t, tmErr, "warm-up tokenmgr")
	require.NoError(t, ggErr, "warm-up google")

	res := peerRunAll([]string{tm0.AccessToken, gg0.Value}, 200*time.Millisecond,
		peerSide{name: "tokenmgr", call: func(ctx context.Context) (string, time.Time, error) {
			tok, err := c.Token(ctx)
			if err != nil {
				return "", time.Time{}, err
			}
			return tok.AccessToken, tok.Expiry, nil
		}},
		peerSide{name: "google", call: func(ctx context.Context) (string, time.Time, error) {
			tok, err := gg.Token(ctx)
			if err != nil {
				return "", time.Time{}, err
			}
			return tok.Value, tok.Expiry, nil
		}},
	)
	tm, ggr := res[0], res[1]
	t.Logf("endpoint latency %v, token lifetime %v, early window %v, second token request fails with 500, %d callers",
		peerEndpointLatency, lifetime, early, peerCallers)
	t.Logf("%v; token requests %d; moved to the next token %v after start", tm, tmReqs.Load(), tm.switchedAfter.Round(time.Millisecond))
	t.Logf("%v; token requests %d; moved to the next token %v after start", ggr, ggReqs.Load(), ggr.switchedAfter.Round(time.Millisecond))
	evMu.Lock()
	for _, ev := range events {
		t.Logf("tokenmgr refresh: reason %s err %v took %v", ev.Reason, ev.Err, ev.Duration.Round(time.Millisecond))
	}
	evMu.Unlock()

	require.True(t, tm.switched, "tokenmgr never moved to a new token within %v", peerGuard)
	require.True(t, ggr.switched, "google never moved to a new token within %v", peerGuard)
	assert.Empty(t, tm.errs, "tokenmgr: callers saw errors")
	assert.GreaterOrEqual(t, tm.minLeft, 200*time.Millisecond,
		"tokenmgr served a token with too little left: it was not replaced before its expiry window")
	assert.EqualValues(t, 3, tmReqs.Load(), "tokenmgr token requests: initial, failed, retry")
	// Google's behaviour is fixed by its code (v0.24.4 cachedTokenProvider:
	// isRefreshErr stops background refreshes; at expiry tokenBlocking
	// fetches under c.mu), so the difference is robust.
	assert.GreaterOrEqual(t, ggr.worst, peerEndpointLatency*9/10,
		"google's worst call: expected a caller to wait for the token request at expiry (behaviour changed?)")
	return tm.worst, ggr.worst
}
