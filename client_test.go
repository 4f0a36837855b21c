package tokenmgr

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/internal/oauthtest"
	"github.com/tokenmgr/tokenmgr/internal/record"
	"github.com/tokenmgr/tokenmgr/store"
)

func TestNewRequiresSource(t *testing.T) {
	_, err := New(Config{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Source")
}

func TestWindowsScaleWithLifetime(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	noJitter := func(time.Duration) time.Duration { return 0 }
	for _, tc := range []struct {
		name          string
		life          time.Duration
		rb, ed        time.Duration // configured
		stale, expire time.Duration // before expiry
	}{
		{"1h auto", time.Hour, 0, 0, 5 * time.Minute, 10 * time.Second},
		{"10m auto", 10 * time.Minute, 0, 0, 150 * time.Second, 10 * time.Second},
		{"4s auto", 4 * time.Second, 0, 0, time.Second, 200 * time.Millisecond},
		{"5s auto is not expired from birth", 5 * time.Second, 0, 0, 1250 * time.Millisecond, 250 * time.Millisecond},
		{"explicit used as given", time.Hour, 20 * time.Minute, time.Minute, 20 * time.Minute, time.Minute},
		{"explicit capped on short token", 4 * time.Second, 5 * time.Minute, 10 * time.Second, 2 * time.Second, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exp := t0.Add(tc.life)
			stale, expire := windows(t0, exp, tc.rb, tc.ed, noJitter)
			assert.Equal(t, tc.stale, exp.Sub(stale), "refresh window")
			assert.Equal(t, tc.expire, exp.Sub(expire), "expiry delta")
			assert.True(t, expire.After(t0), "a fresh token must be usable")
		})
	}
	stale, expire := windows(t0, time.Time{}, 0, 0, noJitter)
	assert.True(t, stale.IsZero() && expire.IsZero(), "no expiry: never stale")

	// Jitter moves the refresh earlier by at most 10% of the window.
	exp := t0.Add(time.Hour)
	stale, _ = windows(t0, exp, 0, 0, func(max time.Duration) time.Duration { return max - 1 })
	assert.InDelta(t, float64(5*time.Minute+30*time.Second), float64(exp.Sub(stale)), float64(time.Millisecond))
}

func TestConcurrentColdCallersMakeOneRequest(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{})
	defer srv.Close()
	gate := make(chan struct{})
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool { <-gate; return false })
	c, _ := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv))}, nil)

	const n = 200
	var wg sync.WaitGroup
	toks := make([]string, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := c.Token(context.Background())
			errs[i] = err
			if tok != nil {
				toks[i] = tok.AccessToken
			}
		}()
	}
	// Let the single request through once it has arrived.
	for srv.TokenRequests.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i])
		require.Equal(t, toks[0], toks[i])
	}
	assert.EqualValues(t, 1, srv.TokenRequests.Load())
	assert.EqualValues(t, 1, c.Stats().Fetches)
}

func TestFreshStaleExpired(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{Lifetime: time.Hour})
	defer srv.Close()
	clk := newFakeClock()
	events := make(chan RefreshEvent, 10)
	c, _ := newTestClient(t, Config{
		Source:    ClientCredentials(ccConfig(srv)),
		OnRefresh: func(e RefreshEvent) { events <- e },
	}, clk)
	ctx := context.Background()

	t1, err := c.Token(ctx)
	require.NoError(t, err)
	require.Equal(t, reasonInitial, (<-events).Reason)

	// Fresh: served from memory.
	clk.Add(30 * time.Minute)
	t2, err := c.Token(ctx)
	require.NoError(t, err)
	assert.Same(t, t1, t2)
	assert.EqualValues(t, 1, srv.TokenRequests.Load())

	// Stale (4 minutes left, inside the 5-minute window): the old token is
	// served at once and one background refresh runs.
	clk.Add(26 * time.Minute)
	t3, err := c.Token(ctx)
	require.NoError(t, err)
	assert.Equal(t, t1.AccessToken, t3.AccessToken, "stale token served while refreshing")
	ev := <-events
	require.NoError(t, ev.Err)
	assert.Equal(t, reasonEarly, ev.Reason)
	t4, err := c.Token(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, t1.AccessToken, t4.AccessToken)
	assert.EqualValues(t, 2, srv.TokenRequests.Load())

	// Expired: callers wait for a new token.
	clk.Add(2 * time.Hour)
	t5, err := c.Token(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, t4.AccessToken, t5.AccessToken)
	assert.Equal(t, reasonExpired, (<-events).Reason)
	assert.EqualValues(t, 3, srv.TokenRequests.Load())
}

func TestWaiterMayLeaveWithoutCancellingRefresh(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{})
	defer srv.Close()
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		once.Do(func() { close(arrived) })
		<-release
		return false
	})
	c, _ := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv))}, nil)

	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() { _, err := c.Token(ctx); errc <- err }()
	<-arrived
	done := make(chan *oauth2.Token)
	go func() { tok, _ := c.Token(context.Background()); done <- tok }()
	cancel()
	err := <-errc
	require.ErrorIs(t, err, context.Canceled)
	close(release)
	tok := <-done
	require.NotNil(t, tok, "the refresh went on for the caller that stayed")
	assert.EqualValues(t, 1, srv.TokenRequests.Load())
}

func TestPermanentErrorIsTypedAndNotRetried(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{})
	defer srv.Close()
	cfg := ccConfig(srv)
	cfg.ClientSecret = "wrong-secret-value-123"
	c, _ := newTestClient(t, Config{Source: ClientCredentials(cfg)}, newFakeClock())

	_, err := c.Token(context.Background())
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrInvalidClient)
	assert.NotErrorIs(t, err, ErrInvalidGrant)
	var te *TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, "invalid_client", te.Code)
	assert.Equal(t, http.StatusUnauthorized, te.StatusCode)
	assert.False(t, te.Temporary)
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re, "oauth2.RetrieveError stays reachable")
	assert.NotContains(t, err.Error(), "wrong-secret-value-123")
	assert.NotContains(t, err.Error(), srv.ClientSecret)
	assert.Contains(t, err.Error(), "client ID or secret wrong or revoked")
	assert.EqualValues(t, 1, srv.TokenRequests.Load(), "a permanent error is not retried")
}

func TestTransientErrorsRetriedHonouringRetryAfter(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{})
	defer srv.Close()
	var mu sync.Mutex
	n := 0
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		n++
		switch n {
		case 1:
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		case 2:
			w.Header().Set("Retry-After", "7")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		case 3:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			w.Write([]byte(`{"error":"temporarily_unavailable"}`))
			return true
		}
		return false
	})
	clk := newFakeClock()
	c, rec := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv))}, clk)
	tok, err := c.Token(context.Background())
	require.NoError(t, err)
	require.NotEmpty(t, tok.AccessToken)
	assert.EqualValues(t, 4, srv.TokenRequests.Load())
	waits := rec.Waits()
	require.Len(t, waits, 3)
	assert.GreaterOrEqual(t, waits[1], 7*time.Second, "Retry-After honoured")
	assert.EqualValues(t, Stats{Fetches: 1}, c.Stats(), "transient failures inside one refresh are not failed fetches")
}

func TestTransientRetriesStopAtDeadline(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{})
	defer srv.Close()
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusBadGateway)
		return true
	})
	clk := newFakeClock()
	c, _ := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), RefreshTimeout: 20 * time.Second}, clk)
	// The fake sleeps move the fake clock, which the deadline check reads:
	// the retries stop once the waits would pass RefreshTimeout.
	_, err := c.Token(context.Background())
	require.Error(t, err)
	var te *TokenError
	require.ErrorAs(t, err, &te)
	assert.True(t, te.Temporary)
	assert.Equal(t, http.StatusBadGateway, te.StatusCode)
	assert.Less(t, srv.TokenRequests.Load(), int64(20), "bounded by the refresh deadline")
}

func TestBackgroundFailureKeepsTokenAndRetries(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{Lifetime: time.Hour})
	defer srv.Close()
	clk := newFakeClock()
	events := make(chan RefreshEvent, 100)
	c, rec := newTestClient(t, Config{
		Source:    ClientCredentials(ccConfig(srv)),
		OnRefresh: func(e RefreshEvent) { events <- e },
	}, clk)
	ctx := context.Background()
	t1, err := c.Token(ctx)
	require.NoError(t, err)
	<-events

	// From now on the first two token requests fail.
	var mu sync.Mutex
	fails := 2
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			w.WriteHeader(http.StatusInternalServerError)
			return true
		}
		return false
	})
	clk.Add(56 * time.Minute)
	got, err := c.Token(ctx)
	require.NoError(t, err)
	assert.Equal(t, t1.AccessToken, got.AccessToken, "served at once, no waiting")
	// The first refresh's own transient retries (within the refresh) and
	// the background loop get it through.
	for ev := range events {
		if ev.Err == nil {
			break
		}
	}
	t2, err := c.Token(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, t1.AccessToken, t2.AccessToken)
	assert.EqualValues(t, 3, srv.TokenRequests.Load()-1)
	assert.NotEmpty(t, rec.Waits())
}

func TestOutageServesValidTokenWithFewAttempts(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{Lifetime: time.Hour})
	defer srv.Close()
	clk := newFakeClock()
	failures := make(chan struct{}, 1000)
	c, _ := newTestClient(t, Config{
		Source:         ClientCredentials(ccConfig(srv)),
		RefreshTimeout: time.Second,
		OnRefresh: func(e RefreshEvent) {
			if e.Err != nil {
				failures <- struct{}{}
			}
		},
	}, clk)
	c.sleep = clk.Sleep // background waits pass as the test moves the clock
	ctx := context.Background()
	t1, err := c.Token(ctx)
	require.NoError(t, err)
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	before := srv.TokenRequests.Load()
	// Walk through the stale window a second at a time, many requests at
	// each step: every one gets the still-valid token.
	staleAt := c.cur.Load().staleAt
	waited := false
	for clk.Now().Before(t1.Expiry.Add(-10 * time.Second)) {
		for range 10 {
			tok, err := c.Token(ctx)
			require.NoError(t, err)
			require.Equal(t, t1.AccessToken, tok.AccessToken)
		}
		if !waited && !clk.Now().Before(staleAt) {
			// The first stale call started the background loop: let its
			// first attempt end before time moves on.
			<-failures
			waited = true
		}
		clk.Add(time.Second)
	}
	attempts := srv.TokenRequests.Load() - before
	assert.Less(t, attempts, int64(100), "a handful of attempts, not one per request (3000+ requests made)")
	assert.Positive(t, attempts)
	t.Logf("outage: %d token requests over the stale window", attempts)

	// Once it truly expires, callers get a clear error.
	clk.Add(20 * time.Second)
	_, err = c.Token(ctx)
	require.Error(t, err)
	var te *TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, http.StatusServiceUnavailable, te.StatusCode)
}

func TestSameTokenFromCachingSourceDoesNotLoop(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{})
	defer srv.Close()
	// cfg.TokenSource caches: it hands back the token being replaced.
	cached := ccConfig(srv).TokenSource(context.Background())
	logs := &strings.Builder{}
	c, _ := newTestClient(t, Config{Source: cached, Logger: newTextLogger(logs)}, nil)
	tok, err := c.Token(context.Background())
	require.NoError(t, err)
	_, err = c.replace(context.Background(), c.cur.Load())
	require.ErrorIs(t, err, ErrSameToken)
	again, err := c.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, tok.AccessToken, again.AccessToken, "kept in service")
	assert.EqualValues(t, 1, srv.TokenRequests.Load())
	assert.Contains(t, logs.String(), "token being replaced")
}

func TestExpiresInGarbage(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		ok         bool
	}{
		{"zero means no expiry", `{"access_token":"a","token_type":"Bearer","expires_in":0}`, true},
		{"negative", `{"access_token":"a","token_type":"Bearer","expires_in":-30}`, false},
		{"string", `{"access_token":"a","token_type":"Bearer","expires_in":"soon"}`, false},
		{"no access token", `{"token_type":"Bearer","expires_in":3600}`, false},
		{"not json", `<html>oops</html>`, false},
		{"error in 200", `{"error":"invalid_grant"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := oauthtest.New(oauthtest.Options{})
			defer srv.Close()
			srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
				w.Header().Set("Content-Type", "application/json")
				w.Write([]byte(tc.body))
				return true
			})
			c, _ := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), RefreshTimeout: 2 * time.Second}, newFakeClock())
			tok, err := c.Token(context.Background())
			if tc.ok {
				require.NoError(t, err)
				assert.True(t, tok.Expiry.IsZero())
				return
			}
			require.Error(t, err)
			assert.LessOrEqual(t, srv.TokenRequests.Load(), int64(1), "garbage is not retried in a loop")
		})
	}
}

func TestRotatingRefreshTokenSavedAndReused(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{Lifetime: time.Hour, Rotate: true})
	defer srv.Close()
	seed := srv.IssueRefreshToken()
	st := store.NewMemory()
	oc := &oauth2.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, Endpoint: oauth2.Endpoint{TokenURL: srv.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}}
	clk := newFakeClock()
	c, _ := newTestClient(t, Config{Source: RefreshToken(oc, seed), Store: st}, clk)
	ctx := context.Background()
	for range 5 {
		_, err := c.Token(ctx)
		require.NoError(t, err)
		clk.Add(2 * time.Hour)
	}
	assert.EqualValues(t, 5, srv.TokenRequests.Load())
	assert.Zero(t, srv.InvalidGrants.Load())
	b, err := st.Load(ctx, DefaultKey)
	require.NoError(t, err)
	r, err := record.Decode(b)
	require.NoError(t, err)
	assert.NotEqual(t, seed, r.RefreshToken, "rotated refresh token saved")

	// A new process (a new Client) with the dead seed: the stored refresh
	// token wins, no invalid_grant.
	clk.Add(2 * time.Hour)
	c2, _ := newTestClient(t, Config{Source: RefreshToken(oc, seed), Store: st}, clk)
	_, err = c2.Token(ctx)
	require.NoError(t, err)
	assert.Zero(t, srv.InvalidGrants.Load())
}

func TestTwoClientsOneStoreRefreshOnce(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{Lifetime: time.Hour, Rotate: true})
	defer srv.Close()
	seed := srv.IssueRefreshToken()
	st := store.NewMemory()
	oc := &oauth2.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, Endpoint: oauth2.Endpoint{TokenURL: srv.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}}
	a, _ := newTestClient(t, Config{Source: RefreshToken(oc, seed), Store: st}, nil)
	b, _ := newTestClient(t, Config{Source: RefreshToken(oc, seed), Store: st}, nil)
	var wg sync.WaitGroup
	for _, c := range []*Client{a, b, a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.Token(context.Background())
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 1, srv.TokenRequests.Load())
	assert.Zero(t, srv.InvalidGrants.Load())
	assert.EqualValues(t, 1, a.Stats().StoreLoads+b.Stats().StoreLoads)
}

func TestClosedClient(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{})
	defer srv.Close()
	c, err := New(Config{Source: ClientCredentials(ccConfig(srv))})
	require.NoError(t, err)
	require.NoError(t, c.Close())
	_, err = c.Token(context.Background())
	require.ErrorIs(t, err, ErrClosed)
	assert.True(t, errors.Is(err, ErrClosed))
}

func TestTokenSourceComesBackForTheEarlyRefresh(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{Lifetime: time.Hour})
	defer srv.Close()
	clk := newFakeClock()
	c, _ := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv))}, clk)
	tok, err := c.TokenSource().Token()
	require.NoError(t, err)
	direct, err := c.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, direct.AccessToken, tok.AccessToken)
	// Expiry moved up so a ReuseTokenSource (10s delta) asks again exactly
	// when the refresh window opens, 5 minutes before the real expiry.
	assert.True(t, direct.Expiry.Add(-5*time.Minute+10*time.Second).Equal(tok.Expiry), "%v vs %v", direct.Expiry, tok.Expiry)
}

func TestStoreErrorsAreReported(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{})
	defer srv.Close()
	st := store.NewMemory()
	require.NoError(t, st.Save(context.Background(), DefaultKey, []byte("not a record")))
	events := make(chan RefreshEvent, 1)
	c, _ := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), Store: st, OnRefresh: func(e RefreshEvent) { events <- e }}, nil)
	_, err := c.Token(context.Background())
	require.NoError(t, err, "an unreadable stored token is replaced by a fetched one")
	ev := <-events
	require.Error(t, ev.StoreErr)
	assert.ErrorIs(t, ev.StoreErr, record.ErrFormat)
	assert.Contains(t, ev.StoreErr.Error(), `stored credential "default"`)
	assert.EqualValues(t, 1, c.Stats().StoreErrors)
}

func TestNewerRecordIsNotOverwritten(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{})
	defer srv.Close()
	st := store.NewMemory()
	newer := []byte(`{"v":99,"access_token":"x","refresh_token":"future"}`)
	require.NoError(t, st.Save(context.Background(), DefaultKey, newer))
	c, _ := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), Store: st}, nil)
	_, err := c.Token(context.Background())
	require.NoError(t, err)
	got, err := st.Load(context.Background(), DefaultKey)
	require.NoError(t, err)
	assert.Equal(t, newer, got, "a newer tokenmgr's record is left as it was")
	assert.EqualValues(t, 1, c.Stats().StoreErrors)
}
