package tokenmgr

// Side-by-side behaviour at the refresh boundary against golang.org/x/oauth2
// and cloud.google.com/go/auth, and the Client alone when refreshes fail.
//
// The latency tests run in real time (they measure how long callers wait)
// against a token endpoint that takes 300ms to answer; they assert only
// ratios with a wide margin and end as soon as every side has moved to its
// next token. The failure tests drive the Client's clock and sleeps and
// synchronise on channels and OnRefresh events.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/auth"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr/internal/oauthtest"
)

const (
	peerEndpointLatency = 300 * time.Millisecond // how long the token endpoint takes
	peerCallers         = 8
	peerPause           = time.Millisecond      // between one caller's calls
	peerSlow            = 50 * time.Millisecond // a call this long waited for something
	peerGuard           = 15 * time.Second      // no side may take longer than this
)

func peerCCConfig(s *oauthtest.Server) *clientcredentials.Config {
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
func peerEndpoint(srv *oauthtest.Server, latency time.Duration, fail func(n int64) bool) *atomic.Int64 {
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
			t.Errorf("tokenmgr worst %v is not under 1/5 of %s's %v", tm, peer, other)
			return
		}
		t.Logf("tokenmgr worst %v is not under 1/5 of %s's %v: measuring once more", tm, peer, other)
	}
}

func boundaryOnce(t *testing.T) (tmWorst, oaWorst time.Duration) {
	const lifetime, early = 3 * time.Second, time.Second

	srv := oauthtest.New(oauthtest.Options{Lifetime: lifetime})
	defer srv.Close()
	peerEndpoint(srv, peerEndpointLatency, nil)
	cc := peerCCConfig(srv)

	c, err := New(Config{Source: ClientCredentials(cc), RefreshBefore: early, ExpiryDelta: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
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
	if tmErr != nil || oaErr != nil {
		t.Fatalf("warm-up: tokenmgr %v, oauth2 %v", tmErr, oaErr)
	}

	res := peerRunAll([]string{"Bearer " + tm0.AccessToken, "Bearer " + oa0.AccessToken}, 200*time.Millisecond,
		tmRT.side("tokenmgr", tmT), oaRT.side("oauth2", oaT))
	tm, oa := res[0], res[1]
	t.Logf("endpoint latency %v, token lifetime %v, early window %v, %d callers", peerEndpointLatency, lifetime, early, peerCallers)
	for _, r := range res {
		t.Logf("%v; moved to the next token %v after start", r, r.switchedAfter.Round(time.Millisecond))
	}

	for _, r := range res {
		if len(r.errs) > 0 {
			t.Errorf("%s: %d callers saw errors, first: %v", r.name, len(r.errs), r.errs[0])
		}
		if !r.switched {
			t.Fatalf("%s never moved to a new token within %v", r.name, peerGuard)
		}
	}
	if oa.worst < peerEndpointLatency*9/10 {
		t.Fatalf("oauth2 worst %v: the run did not make anyone wait for the %v endpoint; the scenario is broken", oa.worst, peerEndpointLatency)
	}
	if st := c.Stats(); st.Fetches != 2 || st.FetchErrors != 0 {
		t.Errorf("tokenmgr stats %+v, want 2 fetches (initial, early) and no errors", st)
	}
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

	tmSrv := oauthtest.New(oauthtest.Options{Lifetime: lifetime})
	defer tmSrv.Close()
	tmReqs := peerEndpoint(tmSrv, peerEndpointLatency, failSecond)
	var evMu sync.Mutex
	var events []RefreshEvent
	c, err := New(Config{
		Source:        ClientCredentials(peerCCConfig(tmSrv)),
		RefreshBefore: early,
		ExpiryDelta:   200 * time.Millisecond,
		OnRefresh: func(ev RefreshEvent) {
			evMu.Lock()
			events = append(events, ev)
			evMu.Unlock()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	ggSrv := oauthtest.New(oauthtest.Options{Lifetime: lifetime})
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
	if tmErr != nil || ggErr != nil {
		t.Fatalf("warm-up: tokenmgr %v, google %v", tmErr, ggErr)
	}

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

	if !tm.switched || !ggr.switched {
		t.Fatalf("a side never moved to a new token within %v (tokenmgr %v, google %v)", peerGuard, tm.switched, ggr.switched)
	}
	if len(tm.errs) > 0 {
		t.Errorf("tokenmgr: %d callers saw errors, first: %v", len(tm.errs), tm.errs[0])
	}
	if tm.minLeft < 200*time.Millisecond {
		t.Errorf("tokenmgr served a token with only %v left: it was not replaced before its expiry window", tm.minLeft)
	}
	if n := tmReqs.Load(); n != 3 {
		t.Errorf("tokenmgr made %d token requests, want 3 (initial, failed, retry)", n)
	}
	// Google's behaviour is fixed by its code (v0.24.4 cachedTokenProvider:
	// isRefreshErr stops background refreshes; at expiry tokenBlocking
	// fetches under c.mu), so the difference is robust.
	if ggr.worst < peerEndpointLatency*9/10 {
		t.Errorf("google worst %v: expected a caller to wait for the token request at expiry (behaviour changed?)", ggr.worst)
	}
	return tm.worst, ggr.worst
}

// peerClock is a settable clock for the Client's now and sleep seams.
type peerClock struct {
	mu sync.Mutex
	t  time.Time
}

func (k *peerClock) Now() time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.t
}

func (k *peerClock) Set(t time.Time) {
	k.mu.Lock()
	k.t = t
	k.mu.Unlock()
}

func (k *peerClock) Add(d time.Duration) time.Time {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.t = k.t.Add(d)
	return k.t
}

// peerSimClient returns a Client whose clock is k, whose sleeps pass at
// once by moving k forward (recorded in sleeps), and without jitter.
//
// k starts at the real time and the tests move it minutes ahead, into the
// token's last minutes. Refresh contexts carry real deadlines
// (RefreshTimeout from now), so with k ahead of them fetch makes one
// request per refresh and does not retry inside it: what is left to
// observe is the background loop's own retry policy.
func peerSimClient(t *testing.T, cfg Config, k *peerClock, sleeps *[]time.Duration, mu *sync.Mutex) *Client {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.now = k.Now
	c.jitter = func(time.Duration) time.Duration { return 0 }
	c.sleep = func(ctx context.Context, d time.Duration) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		mu.Lock()
		*sleeps = append(*sleeps, d)
		mu.Unlock()
		k.Add(d)
		return nil
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestBackgroundRefreshFailureNoWait: while a background refresh is stuck
// at the endpoint, failing, and retried, every caller gets the current
// token at once; the retry replaces it before it expires.
func TestBackgroundRefreshFailureNoWait(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{Lifetime: time.Hour})
	defer srv.Close()

	// Token requests after the first are held until the test lets them
	// go; the second then fails with 500.
	arrived := make(chan int64)
	release := make(chan struct{})
	var reqs atomic.Int64
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/token" {
			return false
		}
		n := reqs.Add(1)
		if n == 1 {
			return false
		}
		select {
		case arrived <- n:
		case <-time.After(peerGuard):
			return false
		}
		select {
		case <-release:
		case <-time.After(peerGuard):
		}
		if n == 2 {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return true
		}
		return false
	})

	k := &peerClock{t: time.Now()}
	var mu sync.Mutex
	var sleeps []time.Duration
	type stamped struct {
		ev  RefreshEvent
		now time.Time
	}
	events := make(chan stamped, 16)
	c := peerSimClient(t, Config{
		Source:    ClientCredentials(peerCCConfig(srv)),
		OnRefresh: func(ev RefreshEvent) { events <- stamped{ev, k.Now()} },
	}, k, &sleeps, &mu)

	ctx := context.Background()
	tok0, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	<-events // initial
	e0 := c.cur.Load()
	k.Set(e0.staleAt.Add(time.Second)) // 4m59s before expiry: stale

	if tok, err := c.Token(ctx); err != nil || tok != tok0 {
		t.Fatalf("stale Token = %v, %v; want the current token", tok, err)
	}

	// callersDoNotWait runs 8 callers x 200 calls while the refresh is
	// held at the endpoint: each must get tok0 at once.
	callersDoNotWait := func(stage string) time.Duration {
		t.Helper()
		type out struct {
			worst time.Duration
			err   error
		}
		done := make(chan out, peerCallers)
		for range peerCallers {
			go func() {
				var o out
				for range 200 {
					t0 := time.Now()
					tok, err := c.Token(ctx)
					o.worst = max(o.worst, time.Since(t0))
					if err != nil || tok != tok0 {
						o.err = fmt.Errorf("Token = %v, %v; want the current token", tok, err)
						break
					}
				}
				done <- o
			}()
		}
		var worst time.Duration
		timeout := time.After(peerGuard)
		for range peerCallers {
			select {
			case o := <-done:
				if o.err != nil {
					t.Errorf("%s: %v", stage, o.err)
				}
				worst = max(worst, o.worst)
			case <-timeout:
				t.Fatalf("%s: callers blocked behind the refresh in flight", stage)
			}
		}
		return worst
	}

	var worst time.Duration
	var evs []stamped
	for done := false; !done; {
		select {
		case n := <-arrived:
			worst = max(worst, callersDoNotWait(fmt.Sprintf("token request %d in flight", n)))
			release <- struct{}{}
		case s := <-events:
			evs = append(evs, s)
			done = s.ev.Err == nil
		case <-time.After(peerGuard):
			t.Fatalf("no successful refresh within %v; events so far: %+v", peerGuard, evs)
		}
	}

	for _, s := range evs {
		t.Logf("refresh at expiry-%v: reason %s err %v", e0.tok.Expiry.Sub(s.now).Round(time.Millisecond), s.ev.Reason, s.ev.Err)
	}
	mu.Lock()
	t.Logf("background waits: %v; worst caller latency %v", sleeps, worst)
	mu.Unlock()

	// With the clock ahead of the refresh's real deadline the retry is the
	// background loop's: a failed event, then a successful one. Were fetch
	// to retry inside the refresh, there would be only the successful one;
	// both keep the token in service, so both pass.
	for _, s := range evs[:len(evs)-1] {
		var te *TokenError
		if s.ev.Reason != reasonEarly || !errors.As(s.ev.Err, &te) || te.StatusCode != http.StatusInternalServerError || !te.Temporary {
			t.Errorf("failed refresh event %+v: want reason early and a temporary TokenError with status 500", s.ev)
		}
	}
	last := evs[len(evs)-1]
	if last.ev.Reason != reasonEarly || !last.now.Before(e0.expireAt) {
		t.Errorf("successful refresh %+v at %v; want an early refresh before the token's expiry window (%v)", last.ev, last.now, e0.expireAt)
	}
	tok1, err := c.Token(ctx)
	if err != nil || tok1 == tok0 || tok1.AccessToken == tok0.AccessToken {
		t.Fatalf("after the refresh Token = %v, %v; want a new token", tok1, err)
	}
	if st := c.Stats(); st.Fetches != 2 || st.FetchErrors != 1 {
		t.Errorf("stats %+v; want 2 fetches and 1 fetch error", st)
	}
	if n := reqs.Load(); n != 3 {
		t.Errorf("%d token requests, want 3", n)
	}
	left := e0.expireAt.Sub(e0.staleAt.Add(time.Second))
	mu.Lock()
	defer mu.Unlock()
	for _, d := range sleeps {
		if d <= 0 || d > left/2 {
			t.Errorf("background wait %v; want within (0, %v] (half the time left)", d, left/2)
		}
	}
}

// TestOutageServesUntilExpiry: the endpoint goes down for good once the
// first token is issued. The token keeps being served, without error,
// through its whole refresh window, for a bounded number of token
// requests however many calls are made; once it expires, Token fails with
// the endpoint's error.
func TestOutageServesUntilExpiry(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{Lifetime: time.Hour})
	defer srv.Close()

	const reqLatency = 20 * time.Millisecond // simulated, on the Client's clock
	k := &peerClock{t: time.Now()}
	var mu sync.Mutex
	var reqAt []time.Time // the Client's clock at each token request
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/token" {
			return false
		}
		mu.Lock()
		reqAt = append(reqAt, k.Now())
		n := len(reqAt)
		mu.Unlock()
		k.Add(reqLatency)
		if n == 1 {
			return false
		}
		http.Error(w, "upstream down", http.StatusInternalServerError)
		return true
	})

	var sleeps []time.Duration
	c := peerSimClient(t, Config{Source: ClientCredentials(peerCCConfig(srv))}, k, &sleeps, &mu)
	ctx := context.Background()
	tok0, err := c.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e0 := c.cur.Load()
	k.Set(e0.staleAt.Add(time.Millisecond))
	windowStart := k.Now()

	type out struct {
		calls, served int
		bad           error
		final         error
	}
	done := make(chan out, peerCallers)
	for range peerCallers {
		go func() {
			var o out
			for {
				before := k.Now()
				tok, err := c.Token(ctx)
				after := k.Now()
				o.calls++
				switch {
				case err == nil && !before.Before(e0.expireAt):
					o.bad = fmt.Errorf("served a token at %v, past its expiry window %v", before, e0.expireAt)
				case err == nil && tok != tok0:
					o.bad = fmt.Errorf("served %v, want the only token issued", tok)
				case err != nil && after.Before(e0.expireAt):
					o.bad = fmt.Errorf("error %v while the token was still valid (%v left)", err, e0.expireAt.Sub(after))
				case err != nil:
					o.final = err
				default:
					o.served++
				}
				if err != nil || o.bad != nil {
					done <- o
					return
				}
				runtime.Gosched()
			}
		}()
	}
	var calls, served int
	timeout := time.After(peerGuard)
	for range peerCallers {
		select {
		case o := <-done:
			calls += o.calls
			served += o.served
			if o.bad != nil {
				t.Error(o.bad)
			}
			var te *TokenError
			if o.final != nil && (!errors.As(o.final, &te) || te.StatusCode != http.StatusInternalServerError) {
				t.Errorf("after expiry Token failed with %v; want the endpoint's 500 as a *TokenError", o.final)
			}
		case <-timeout:
			t.Fatalf("callers still running after %v", peerGuard)
		}
	}

	mu.Lock()
	defer mu.Unlock()
	var inWindow []string
	var before, after int
	for _, at := range reqAt[1:] {
		if at.Before(e0.expireAt) {
			before++
			inWindow = append(inWindow, e0.expireAt.Sub(at).Round(time.Millisecond).String())
		} else {
			after++
		}
	}
	sorted := append([]time.Duration(nil), sleeps...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	t.Logf("refresh window %v (stale at expiry-%v, expired at expiry-%v): %d calls, %d served the token; %d token requests in the window, %d after expiry",
		e0.expireAt.Sub(windowStart).Round(time.Second), e0.tok.Expiry.Sub(e0.staleAt), e0.tok.Expiry.Sub(e0.expireAt), calls, served, before, after)
	t.Logf("token requests in the window, as time left before the expiry window: %v", inWindow)
	t.Logf("stats %+v", c.Stats())

	if served < peerCallers {
		t.Errorf("only %d calls were served during the window", served)
	}
	// The background loop makes one request per attempt (it does not
	// retry inside fetch) and waits with jittered backoff from a tenth of
	// the time left, each wait at most half the time left but never below
	// the first: 7 or 8 requests through a 5-minute window. The point is
	// that it does not grow with the number of calls.
	if before > 10 {
		t.Errorf("%d token requests while the token was valid; want at most 10", before)
	}
	if after > peerCallers {
		t.Errorf("%d token requests after expiry for %d callers that stop at their first error", after, peerCallers)
	}
}
