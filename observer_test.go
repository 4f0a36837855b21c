package tokenmgr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

type obsKey struct{}

// recordingObserver records an Observer's calls as lines, and the
// context values each call saw.
type recordingObserver struct {
	mu     sync.Mutex
	events []string
}

func (r *recordingObserver) add(ctx context.Context, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	v, _ := ctx.Value(obsKey{}).(string)
	r.events = append(r.events, fmt.Sprintf(format, args...)+" ctx="+v)
}

func (r *recordingObserver) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.events...)
}

func (r *recordingObserver) observer() *Observer {
	return &Observer{
		RefreshStart: func(ctx context.Context, key string, reason RefreshReason) context.Context {
			r.add(ctx, "start %s %s", key, reason)
			v, _ := ctx.Value(obsKey{}).(string)
			return context.WithValue(ctx, obsKey{}, "refresh("+v+")")
		},
		RefreshDone: func(ctx context.Context, ev RefreshEvent) {
			r.add(ctx, "done %s %s attempts=%d stored=%v err=%v", ev.Key, ev.Reason, ev.Attempts, ev.Stored, ev.Err != nil)
		},
		TokenRequest: func(ctx context.Context, key string, attempt int, err error) {
			var te *TokenError
			status := 0
			if errors.As(err, &te) {
				status = te.StatusCode
			}
			r.add(ctx, "request %s #%d status=%d err=%v", key, attempt, status, err != nil)
		},
		Rejected: func(ctx context.Context, key, host, code string, replayed bool) {
			r.add(ctx, "rejected %s %s %s replayed=%v", key, host, code, replayed)
		},
		HeldOff: func(ctx context.Context, key, cause, host string) {
			r.add(ctx, "heldoff %s %s %s", key, cause, host)
		},
		StoreError: func(ctx context.Context, key, op string, err error) {
			r.add(ctx, "store %s %s", key, op)
		},
	}
}

// ctxRecorder is a token-endpoint transport that records the obsKey
// value of each request's context.
type ctxRecorder struct {
	mu   sync.Mutex
	seen []string
	base http.RoundTripper
}

func (t *ctxRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	v, _ := req.Context().Value(obsKey{}).(string)
	t.mu.Lock()
	t.seen = append(t.seen, v)
	t.mu.Unlock()
	return t.base.RoundTrip(req)
}

func observedGet(t *testing.T, hc *http.Client, ctx context.Context, url string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := hc.Do(req)
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestObserverRefreshAndRejection: an Observer sees the initial refresh
// (started with the caller's context, whose values, as RefreshStart
// returned them, reach the token request), each token request, a
// rejection that is replayed and the refresh it causes, parented on the
// rejected request's context.
func TestObserverRefreshAndRejection(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	rec := &recordingObserver{}
	tr := &ctxRecorder{base: http.DefaultTransport}
	c := newTestClient(t, Config{
		Source:          ClientCredentials(ccConfig(srv)),
		Key:             "api",
		Observer:        rec.observer(),
		TokenHTTPClient: &http.Client{Transport: tr},
	})
	hc := c.HTTPClient()
	ctx := context.WithValue(context.Background(), obsKey{}, "caller")
	tok, err := c.Token(ctx)
	require.NoError(t, err)
	host := strings.TrimPrefix(srv.URL, "http://")
	assert.Equal(t, []string{
		"start api initial ctx=caller",
		"request api #1 status=0 err=false ctx=refresh(caller)",
		"done api initial attempts=1 stored=false err=false ctx=refresh(caller)",
	}, rec.lines())

	// Served from memory: no event.
	assert.Equal(t, http.StatusOK, observedGet(t, hc, ctx, srv.URL+"/api"))
	assert.Len(t, rec.lines(), 3)

	srv.Revoke(tok.AccessToken)
	rctx := context.WithValue(context.Background(), obsKey{}, "request")
	assert.Equal(t, http.StatusOK, observedGet(t, hc, rctx, srv.URL+"/api"))
	assert.Equal(t, []string{
		"start api invalid ctx=request",
		"request api #1 status=0 err=false ctx=refresh(request)",
		"done api invalid attempts=1 stored=false err=false ctx=refresh(request)",
		"rejected api " + host + " InvalidClientTokenId replayed=true ctx=request",
	}, rec.lines()[3:])
	tr.mu.Lock()
	assert.Equal(t, []string{"refresh(caller)", "refresh(request)"}, tr.seen, "the token requests carry RefreshStart's values")
	tr.mu.Unlock()
}

// TestObserverRetriesAndCooldown: each failed token request is observed
// with its *TokenError, the refresh's attempts are counted in RefreshDone,
// and a call answered with a failed refresh's error is held off by the
// cooldown.
func TestObserverRetriesAndCooldown(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	var n int
	var mu sync.Mutex
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/token" && n < 1 {
			n++
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	rec := &recordingObserver{}
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), Observer: rec.observer()})
	c.sleep = func(context.Context, time.Duration) error { return nil }
	_, err := c.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{
		"start default initial ctx=",
		"request default #1 status=503 err=true ctx=refresh()",
		"request default #2 status=0 err=false ctx=refresh()",
		"done default initial attempts=2 stored=false err=false ctx=refresh()",
	}, rec.lines())

	bad := ccConfig(srv)
	bad.ClientSecret = "wrong"
	rec2 := &recordingObserver{}
	c2 := newTestClient(t, Config{Source: ClientCredentials(bad), Observer: rec2.observer()})
	_, err = c2.Token(context.Background())
	require.ErrorIs(t, err, ErrInvalidClient)
	_, err = c2.Token(context.Background())
	require.ErrorIs(t, err, ErrInvalidClient)
	assert.Equal(t, []string{
		"start default initial ctx=",
		"request default #1 status=401 err=true ctx=refresh()",
		"done default initial attempts=1 stored=false err=true ctx=refresh()",
		"heldoff default cooldown  ctx=",
	}, rec2.lines())
}

// failingStore is a Store whose Load and Save fail.
type failingStore struct{ store.Store }

var errStoreDown = errors.New("store down")

func (failingStore) Load(context.Context, string) ([]byte, error) { return nil, errStoreDown }
func (failingStore) Save(context.Context, string, []byte) error   { return errStoreDown }

// TestObserverStoreErrorsAndStored: a Store that cannot be read or
// written is observed on each operation; a token adopted from the Store is
// observed as stored, with no token request.
func TestObserverStoreErrorsAndStored(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	rec := &recordingObserver{}
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), Store: failingStore{}, Observer: rec.observer()})
	_, err := c.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{
		"start default initial ctx=",
		"store default load ctx=refresh()",
		"request default #1 status=0 err=false ctx=refresh()",
		"store default save ctx=refresh()",
		"done default initial attempts=1 stored=false err=false ctx=refresh()",
	}, rec.lines())

	st := store.NewMemory()
	c1 := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), Store: st})
	_, err = c1.Token(context.Background())
	require.NoError(t, err)
	rec2 := &recordingObserver{}
	c2 := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), Store: st, Observer: rec2.observer()})
	_, err = c2.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, []string{
		"start default initial ctx=",
		"done default initial attempts=0 stored=true err=false ctx=refresh()",
	}, rec2.lines())
}

// TestObserverBackground: a background refresh is started with the
// context of the request that found the token stale.
func TestObserverBackground(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	synctest.Test(t, func(t *testing.T) {
		rec := &recordingObserver{}
		c := newBubbleClient(t, srv, Config{Source: ClientCredentials(ccConfig(srv)), Observer: rec.observer()})
		_, err := c.Token(context.Background())
		require.NoError(t, err)
		time.Sleep(59 * time.Minute) // in the refresh window, not expired
		_, err = c.Token(context.WithValue(context.Background(), obsKey{}, "stale"))
		require.NoError(t, err)
		synctest.Wait()
		assert.Equal(t, []string{
			"start default early ctx=stale",
			"request default #1 status=0 err=false ctx=refresh(stale)",
			"done default early attempts=1 stored=false err=false ctx=refresh(stale)",
		}, rec.lines()[3:])
	})
}

// TestObserverDamping: a host that rejects fresh tokens too is damped;
// its next rejections are observed unreplayed and held off.
func TestObserverDamping(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" {
			return false
		}
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		w.WriteHeader(http.StatusUnauthorized)
		return true
	})
	rec := &recordingObserver{}
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), Observer: rec.observer()})
	hc := c.HTTPClient()
	host := strings.TrimPrefix(srv.URL, "http://")
	for range 2 {
		assert.Equal(t, http.StatusUnauthorized, observedGet(t, hc, context.Background(), srv.URL+"/api"))
	}
	var rej []string
	for _, l := range rec.lines() {
		if strings.HasPrefix(l, "rejected") || strings.HasPrefix(l, "heldoff") {
			rej = append(rej, l)
		}
	}
	assert.Equal(t, []string{
		"rejected default " + host + " invalid_token replayed=true ctx=",
		"rejected default " + host + " invalid_token replayed=false ctx=",
		"rejected default " + host + " invalid_token replayed=false ctx=",
		"heldoff default damping " + host + " ctx=",
	}, rej)
}

// TestObserverPanicIsLogged: a panic in any Observer func is logged,
// redacted, and the Client goes on as without it.
func TestObserverPanicIsLogged(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	var secret string
	boom := func() { panic("observer saw " + secret) }
	obs := &Observer{
		RefreshStart: func(context.Context, string, RefreshReason) context.Context { boom(); return nil },
		RefreshDone:  func(context.Context, RefreshEvent) { boom() },
		TokenRequest: func(context.Context, string, int, error) { boom() },
		Rejected:     func(context.Context, string, string, string, bool) { boom() },
	}
	var logs strings.Builder
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), Observer: obs, Logger: newTextLogger(&logs)})
	secret = srv.ClientSecret
	tok, err := c.Token(context.Background())
	require.NoError(t, err)
	secret = tok.AccessToken
	srv.Revoke(tok.AccessToken)
	assert.Equal(t, http.StatusOK, observedGet(t, c.HTTPClient(), context.Background(), srv.URL+"/api"))
	out := logs.String()
	for _, f := range []string{"RefreshStart", "RefreshDone", "TokenRequest", "Rejected"} {
		assert.Contains(t, out, "func="+f)
	}
	assert.NotContains(t, out, srv.ClientSecret)
	assert.NotContains(t, out, tok.AccessToken)
}

// TestObserverCostsNothingOnTheHotPath: a request with a token in service
// allocates as much with an Observer as without.
func TestObserverCostsNothingOnTheHotPath(t *testing.T) {
	base := roundTripFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}, nil
	})
	allocs := func(obs *Observer) float64 {
		c := newTestClient(t, Config{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "x"}), Observer: obs})
		rt := c.Transport(base)
		req, _ := http.NewRequest(http.MethodGet, "https://api.example.com/", nil)
		return testing.AllocsPerRun(100, func() { rt.RoundTrip(req) })
	}
	assert.Equal(t, allocs(nil), allocs((&recordingObserver{}).observer()))
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestObserverStoreLocked: a refresh reports how long it waited for the
// Store's lock, here held by another holder for 5 seconds.
func TestObserverStoreLocked(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	synctest.Test(t, func(t *testing.T) {
		st := store.NewMemory()
		waits := make(chan time.Duration, 2)
		c := newBubbleClient(t, srv, Config{Source: ClientCredentials(ccConfig(srv)), Store: st, Observer: &Observer{
			StoreLocked: func(_ context.Context, key string, waited time.Duration) { waits <- waited },
		}})
		unlock, err := st.(store.Locker).Lock(context.Background(), DefaultKey)
		require.NoError(t, err)
		done := make(chan error)
		go func() {
			_, err := c.Token(context.Background())
			done <- err
		}()
		time.Sleep(5 * time.Second)
		unlock()
		require.NoError(t, <-done)
		assert.Equal(t, 5*time.Second, <-waits)
	})
}

// TestObserverClosed: Close tells the Observer once.
func TestObserverClosed(t *testing.T) {
	var closed []string
	c, err := New(Config{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "x"}), Key: "k",
		Observer: &Observer{Closed: func(key string) { closed = append(closed, key) }}})
	require.NoError(t, err)
	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	assert.Equal(t, []string{"k"}, closed)
}
