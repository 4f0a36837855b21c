package tokenmgr

// The Client with a store: tokens saved and adopted, rotated refresh
// tokens kept across failed saves, one refresh for clients sharing a store,
// store errors reported. Cross-process runs are in crossprocess_test.go; the
// stores themselves are tested in package store.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

func TestInvalidateWithStoreFetchesANewToken(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), Store: store.NewMemory()})
	t1, err := c.Token(context.Background())
	require.NoError(t, err)
	c.Invalidate(t1)
	t2, err := c.Token(context.Background())
	require.NoError(t, err)
	assert.NotEqual(t, t1.AccessToken, t2.AccessToken, "the rejected token is not taken back from the store")
	assert.EqualValues(t, 2, srv.TokenRequests.Load())
}

// flakyStore fails Save while fail is set.
type flakyStore struct {
	store.Store
	fail atomic.Bool
}

func (f *flakyStore) Save(ctx context.Context, k string, b []byte) error {
	if f.fail.Load() {
		return errors.New("disk full")
	}
	return f.Store.Save(ctx, k, b)
}

func (f *flakyStore) Lock(ctx context.Context, k string) (func(), error) {
	return f.Store.(store.Locker).Lock(ctx, k)
}

func TestRotatedRefreshTokenSurvivesAFailedSave(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{Rotate: true, Lifetime: time.Hour})
	defer srv.Close()
	st := &flakyStore{Store: store.NewMemory()}
	cfg := &oauth2.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, Endpoint: oauth2.Endpoint{TokenURL: srv.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}}
	c := newTestClient(t, Config{Source: RefreshToken(cfg, srv.IssueRefreshToken()), Store: st})
	ctx := context.Background()
	t1, err := c.Token(ctx) // R0 → T1, R1: saved
	require.NoError(t, err)
	st.fail.Store(true)
	c.Invalidate(t1)
	t2, err := c.Token(ctx) // R1 → T2, R2: not saved
	require.NoError(t, err)
	st.fail.Store(false)
	c.Invalidate(t2)
	t3, err := c.Token(ctx) // must redeem R2, not the stored R1, nor adopt T1
	require.NoError(t, err)
	assert.NotEqual(t, t1.AccessToken, t3.AccessToken)
	assert.Zero(t, srv.InvalidGrants.Load(), "the stale stored refresh token was never redeemed")
	assert.EqualValues(t, 1, c.Stats().StoreErrors)
}

func TestStoredTokenOfAnotherConfigurationIsNotAdopted(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	st := store.NewMemory()
	a := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), Store: st})
	ta, err := a.Token(context.Background())
	require.NoError(t, err)

	// Same client, other scopes: a different configuration. It neither
	// adopts the stored token nor (since ErrKeyInUse) replaces it.
	cfg := ccConfig(srv)
	cfg.Scopes = []string{"admin"}
	b := newTestClient(t, Config{Source: ClientCredentials(cfg), Store: st})
	_, err = b.Token(context.Background())
	require.ErrorIs(t, err, ErrKeyInUse)
	assert.Zero(t, b.Stats().StoreLoads)

	// The same configuration again adopts what is stored.
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), Store: st})
	tc, err := c.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, ta.AccessToken, tc.AccessToken)
	assert.EqualValues(t, 1, c.Stats().StoreLoads)
}

func TestRotatingRefreshTokenSavedAndReused(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: time.Hour, Rotate: true})
	defer srv.Close()
	seed := srv.IssueRefreshToken()
	oc := &oauth2.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, Endpoint: oauth2.Endpoint{TokenURL: srv.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}}
	synctest.Test(t, func(t *testing.T) {
		st := store.NewMemory()
		c := newBubbleClient(t, srv, Config{Source: RefreshToken(oc, seed), Store: st})
		ctx := context.Background()
		for range 5 {
			_, err := c.Token(ctx)
			require.NoError(t, err)
			time.Sleep(2 * time.Hour)
		}
		assert.EqualValues(t, 5, srv.TokenRequests.Load())
		assert.Zero(t, srv.InvalidGrants.Load())
		b, err := st.Load(ctx, DefaultKey)
		require.NoError(t, err)
		r, err := record.Decode(b)
		require.NoError(t, err)
		assert.NotEqual(t, seed, r.RefreshToken, "rotated refresh token saved")

		// A new process (a new Client) with the dead seed: the stored
		// refresh token wins, no invalid_grant.
		time.Sleep(2 * time.Hour)
		c2 := newBubbleClient(t, srv, Config{Source: RefreshToken(oc, seed), Store: st})
		_, err = c2.Token(ctx)
		require.NoError(t, err)
		assert.Zero(t, srv.InvalidGrants.Load())
	})
}

func TestTwoClientsOneStoreRefreshOnce(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: time.Hour, Rotate: true})
	defer srv.Close()
	seed := srv.IssueRefreshToken()
	st := store.NewMemory()
	oc := &oauth2.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, Endpoint: oauth2.Endpoint{TokenURL: srv.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}}
	a := newTestClient(t, Config{Source: RefreshToken(oc, seed), Store: st})
	b := newTestClient(t, Config{Source: RefreshToken(oc, seed), Store: st})
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

func TestStoreErrorsAreReported(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	st := store.NewMemory()
	require.NoError(t, st.Save(context.Background(), DefaultKey, []byte("not a record")))
	events := make(chan RefreshEvent, 1)
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), Store: st, OnRefresh: func(e RefreshEvent) { events <- e }})
	_, err := c.Token(context.Background())
	require.NoError(t, err, "an unreadable stored token is replaced by a fetched one")
	ev := <-events
	require.Error(t, ev.StoreErr)
	assert.ErrorIs(t, ev.StoreErr, record.ErrFormat)
	assert.Contains(t, ev.StoreErr.Error(), `stored credential "default"`)
	assert.EqualValues(t, 1, c.Stats().StoreErrors)
}

func TestNewerRecordIsNotOverwritten(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	st := store.NewMemory()
	newer := []byte(`{"v":99,"access_token":"x","refresh_token":"future"}`)
	require.NoError(t, st.Save(context.Background(), DefaultKey, newer))
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), Store: st})
	_, err := c.Token(context.Background())
	require.NoError(t, err)
	got, err := st.Load(context.Background(), DefaultKey)
	require.NoError(t, err)
	assert.Equal(t, newer, got, "a newer tokenmgr's record is left as it was")
	assert.EqualValues(t, 1, c.Stats().StoreErrors)
}

// downStore is a shared store whose server does not answer: every call
// fails with err.
type downStore struct{ err error }

func (d downStore) Load(context.Context, string) ([]byte, error) { return nil, d.err }

func (d downStore) Save(context.Context, string, []byte) error { return d.err }

func (d downStore) Delete(context.Context, string) error { return d.err }

// A shared store that is down (store.ErrUnavailable) logs the outage
// itself: the Client fetches the token, reports the store error in its
// event and stats, and logs it at debug level only, not once per refresh
// at warning and error level. Any other store error is still a warning.
func TestUnavailableSharedStoreIsNotLoggedPerRefresh(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	for _, tc := range []struct {
		name string
		err  error
		loud bool
	}{
		{"unavailable", fmt.Errorf("redis store: %w: connection refused", store.ErrUnavailable), false},
		{"other", errors.New("disk full"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs strings.Builder
			var ev RefreshEvent
			c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), Store: downStore{tc.err},
				Logger: newTextLogger(&logs), OnRefresh: func(e RefreshEvent) { ev = e }})
			tok, err := c.Token(context.Background())
			require.NoError(t, err)
			assert.NotEmpty(t, tok.AccessToken)
			assert.ErrorIs(t, ev.StoreErr, tc.err)
			assert.EqualValues(t, 1, c.Stats().StoreErrors)
			out := logs.String()
			if !tc.loud {
				assert.Contains(t, out, "level=DEBUG msg=\"reading the stored token failed")
			}
			loud := strings.Contains(out, "level=WARN") || strings.Contains(out, "level=ERROR")
			assert.Equal(t, tc.loud, loud, "logs:\n%s", out)
		})
	}
}

// lateDeadlineStore is a store.Locker whose next Lock, once armed, waits
// until the test lets it go and then fails with context.DeadlineExceeded
// although its context has not ended: what redisstore's Lock returns when
// the refresh's deadline has passed by the clock but the context's timer
// has not fired yet (it fires late on a loaded machine).
type lateDeadlineStore struct {
	store.Store
	armed   atomic.Bool
	entered chan struct{}
	release chan struct{}
}

func (s *lateDeadlineStore) Lock(ctx context.Context, k string) (func(), error) {
	if s.armed.CompareAndSwap(true, false) {
		s.entered <- struct{}{}
		<-s.release
		return nil, context.DeadlineExceeded
	}
	return s.Store.(store.Locker).Lock(ctx, k)
}

// A caller whose token has expired joins the background refresh still
// running for it; that refresh's deadline is the token's expiry. When the
// clock has passed the expiry but the refresh's context has not noticed
// yet, the refresh's failure is still its cut-off, and the caller asks
// afresh instead of returning it. (The redisstore fleet test saw callers
// with 10s to spare fail with "locking credential ...: context deadline
// exceeded" under load: the cut-off was recognised by ctx.Err() only.)
func TestCallerJoiningARefreshCutOffByTheClockAsksAfresh(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: time.Hour})
	defer srv.Close()
	synctest.Test(t, func(t *testing.T) {
		st := &lateDeadlineStore{Store: store.NewMemory(), entered: make(chan struct{}), release: make(chan struct{})}
		c := newBubbleClient(t, srv, Config{Source: ClientCredentials(ccConfig(srv)), Store: st})
		// The Client's clock moves apart from the bubble's, which stays
		// put: the refresh's context never ends by itself here.
		var now atomic.Pointer[time.Time]
		t0 := time.Now()
		now.Store(&t0)
		c.now = func() time.Time { return *now.Load() }
		ctx := context.Background()
		t1, err := c.Token(ctx)
		require.NoError(t, err)
		e := c.cur.Load()

		st.armed.Store(true)
		stale := e.staleAt.Add(time.Second)
		now.Store(&stale)
		got, err := c.Token(ctx) // stale: served, and the background refresh starts
		require.NoError(t, err)
		assert.Equal(t, t1.AccessToken, got.AccessToken)
		<-st.entered // the background refresh waits in Lock

		expired := e.expireAt.Add(time.Second)
		now.Store(&expired)
		type result struct {
			tok *oauth2.Token
			err error
		}
		res := make(chan result, 1)
		go func() {
			tok, err := c.Token(ctx)
			res <- result{tok, err}
		}()
		synctest.Wait() // the caller waits on the background refresh's flight
		close(st.release)
		r := <-res
		require.NoError(t, r.err)
		assert.NotEqual(t, t1.AccessToken, r.tok.AccessToken)
		assert.EqualValues(t, 2, srv.TokenRequests.Load(), "the caller's own refresh fetched the second token")
	})
}

// TestRotatedRefreshTokenSavedWhenTheAccessTokenIsTheSame: an endpoint
// that rotates the (single-use) refresh token but hands back the access
// token still valid gets ErrSameToken, and the rotated refresh token is
// saved all the same: left only in memory, a restart would present the
// used one and get invalid_grant.
func TestRotatedRefreshTokenSavedWhenTheAccessTokenIsTheSame(t *testing.T) {
	var mu sync.Mutex
	current, issued := "rt-0", 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if r.FormValue("grant_type") != "refresh_token" || r.FormValue("refresh_token") != current {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_grant"}`)
			return
		}
		issued++
		current = fmt.Sprintf("rt-%d", issued)
		fmt.Fprintf(w, `{"access_token":"same-access-token","token_type":"Bearer","expires_in":3600,"refresh_token":%q}`, current)
	}))
	defer srv.Close()
	cfg := &oauth2.Config{ClientID: "id", ClientSecret: "secret", Endpoint: oauth2.Endpoint{TokenURL: srv.URL, AuthStyle: oauth2.AuthStyleInParams}}
	st := store.NewMemory()
	c := newTestClient(t, Config{Source: RefreshToken(cfg, "rt-0"), Store: st})
	_, err := c.Token(context.Background())
	require.NoError(t, err)

	_, err = c.replace(context.Background(), c.cur.Load())
	require.ErrorIs(t, err, ErrSameToken)
	mu.Lock()
	want := current
	mu.Unlock()
	require.Equal(t, "rt-2", want)
	r, err := record.Load(context.Background(), st, DefaultKey)
	require.NoError(t, err)
	assert.Equal(t, want, r.RefreshToken, "the rotated refresh token is stored")

	// A restart (another Client on the store, seeded with the first refresh
	// token) redeems the stored one.
	c2 := newTestClient(t, Config{Source: RefreshToken(cfg, "rt-0"), Store: st})
	_, err = c2.Token(context.Background())
	require.NoError(t, err)
	_, err = c2.replace(context.Background(), c2.cur.Load())
	require.ErrorIs(t, err, ErrSameToken, "not invalid_grant")
	mu.Lock()
	assert.Equal(t, "rt-3", current, "the stored refresh token was redeemed")
	mu.Unlock()
}

// Two configurations under one key: the second neither adopts nor
// overwrites the first's credential (and its rotated refresh token), it
// fails with ErrKeyInUse naming both; the first goes on with its own.
// Before, the second logged at Info level and replaced the record: the
// first's next refresh redeemed a refresh token the endpoint had rotated
// away (invalid_grant).
// blinkingStore fails Load once with store.ErrUnavailable when armed: a
// shared store (Redis) that did not answer the read before a refresh and
// answers its save.
type blinkingStore struct {
	store.Store
	blink atomic.Bool
}

func (b *blinkingStore) Load(ctx context.Context, k string) ([]byte, error) {
	if b.blink.CompareAndSwap(true, false) {
		return nil, fmt.Errorf("blink: %w", store.ErrUnavailable)
	}
	return b.Store.Load(ctx, k)
}

// A refresh whose read of the store failed has not seen whose the record
// is: its save must not replace another configuration's record (and the
// rotated refresh token in it) when the store answers again.
func TestAnotherConfigurationsCredentialSurvivesAFailedRead(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{Rotate: true, Lifetime: time.Hour})
	defer srv.Close()
	st := &blinkingStore{Store: store.NewMemory()}
	ctx := context.Background()
	rtCfg := &oauth2.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, Endpoint: oauth2.Endpoint{TokenURL: srv.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}}
	a := newTestClient(t, Config{Source: RefreshToken(rtCfg, srv.IssueRefreshToken()), Store: st})
	_, err := a.Token(ctx)
	require.NoError(t, err)
	before, err := st.Store.Load(ctx, DefaultKey)
	require.NoError(t, err)

	other := ccConfig(srv)
	other.Scopes = []string{"other"}
	b := newTestClient(t, Config{Source: ClientCredentials(other), Store: st})
	st.blink.Store(true)
	_, _ = b.Token(ctx)
	after, err := st.Store.Load(ctx, DefaultKey)
	require.NoError(t, err)
	assert.Equal(t, before, after, "the first configuration's record was overwritten")
	assert.NotZero(t, b.Stats().StoreErrors)
}

func TestAnotherConfigurationsCredentialIsNotOverwritten(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{Rotate: true, Lifetime: time.Hour})
	defer srv.Close()
	st := store.NewMemory()
	ctx := context.Background()
	rtCfg := &oauth2.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, Endpoint: oauth2.Endpoint{TokenURL: srv.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}}
	a := newTestClient(t, Config{Source: RefreshToken(rtCfg, srv.IssueRefreshToken()), Store: st})
	_, err := a.Token(ctx)
	require.NoError(t, err)
	before, err := st.Load(ctx, DefaultKey)
	require.NoError(t, err)

	other := ccConfig(srv)
	other.Scopes = []string{"other"}
	b := newTestClient(t, Config{Source: ClientCredentials(other), Store: st})
	_, err = b.Token(ctx)
	require.ErrorIs(t, err, ErrKeyInUse)
	for _, want := range []string{`"default"`, "an OAuth token", "refresh_token grant at " + srv.TokenURL(), "client_credentials grant at " + srv.TokenURL(), "scopes other"} {
		assert.Contains(t, err.Error(), want)
	}
	after, err := st.Load(ctx, DefaultKey)
	require.NoError(t, err)
	assert.Equal(t, before, after, "the first configuration's record was overwritten")
	assert.EqualValues(t, 1, srv.TokenRequests.Load(), "the second configuration asked the endpoint")

	// A new Client of the first configuration (a restart) goes on with the
	// rotated refresh token it stored.
	a2 := newTestClient(t, Config{Source: RefreshToken(rtCfg, "seed-used-up"), Store: st})
	tok, err := a2.Token(ctx)
	require.NoError(t, err)
	a2.Invalidate(tok)
	_, err = a2.Token(ctx)
	require.NoError(t, err)
	assert.Zero(t, srv.InvalidGrants.Load())

	// Its own key is the way out.
	c := newTestClient(t, Config{Source: ClientCredentials(other), Store: st, Key: "other"})
	_, err = c.Token(ctx)
	require.NoError(t, err)
	r, err := record.Load(ctx, st, "other")
	require.NoError(t, err)
	assert.Contains(t, r.Config, "client_credentials grant at "+srv.TokenURL())
	assert.NotContains(t, r.Config, srv.ClientSecret)
}

// TestCloseDuringRefreshKeepsTheRotatedRefreshToken: Close called while a
// token request is at the endpoint lets that request finish and saves its
// answer. The endpoint redeems the refresh token whatever the client does
// next; canceled at once, the answer and its rotated refresh token were
// lost, the store kept the redeemed one, and the next process got
// invalid_grant (examples/refreshtoken failed so under load).
func TestCloseDuringRefreshKeepsTheRotatedRefreshToken(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: time.Hour, Rotate: true})
	defer srv.Close()
	synctest.Test(t, func(t *testing.T) {
		ctx := context.Background()
		st := store.NewMemory()
		oc := &oauth2.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret,
			Endpoint: oauth2.Endpoint{TokenURL: srv.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}}
		c, err := New(Config{Source: RefreshToken(oc, srv.IssueRefreshToken()), Store: st,
			TokenHTTPClient: &http.Client{Transport: cancelingNetwork{srv.InMemoryTransport()}}})
		require.NoError(t, err)
		tok, err := c.Token(ctx)
		require.NoError(t, err)

		arrived := make(chan struct{})
		srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != "/token" {
				return false
			}
			close(arrived)
			select { // a slow endpoint: it answers in 500ms, or when the client hangs up
			case <-r.Context().Done():
			case <-time.After(500 * time.Millisecond):
			}
			return false // it redeems and rotates all the same
		})
		c.Invalidate(tok)
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.Token(ctx) // the refresh; ErrClosed or the token, either is fine
		}()
		<-arrived
		require.NoError(t, c.Close())
		<-done
		srv.SetHook(nil)

		// A restarted process refreshes with the stored refresh token.
		c2 := newBubbleClient(t, srv, Config{Source: RefreshToken(oc, "rt-long-dead"), Store: st})
		tok2, err := c2.Token(ctx)
		require.NoError(t, err)
		c2.Invalidate(tok2)
		_, err = c2.Token(ctx)
		require.NoError(t, err, "the stored refresh token was the one the endpoint had redeemed")
		assert.Zero(t, srv.InvalidGrants.Load())
	})
}

// cancelingNetwork fails a request whose context ended before its answer
// came, as net/http does: an in-memory transport would hand it over.
type cancelingNetwork struct{ next http.RoundTripper }

func (n cancelingNetwork) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := n.next.RoundTrip(req)
	if err == nil && req.Context().Err() != nil {
		resp.Body.Close()
		return nil, req.Context().Err()
	}
	return resp, err
}

// idTokenEndpoint is a refresh-grant token endpoint that answers
// at-N and rt-N for its Nth request, with the ID token idt on the first
// answer only; redeemed returns the refresh tokens it was sent.
func idTokenEndpoint(t *testing.T, idt string) (cfg *oauth2.Config, redeemed func() []string) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, r.FormValue("refresh_token"))
		n := len(got)
		w.Header().Set("Content-Type", "application/json")
		extra := ""
		if n == 1 {
			extra = fmt.Sprintf(`,"id_token":%q`, idt)
		}
		fmt.Fprintf(w, `{"access_token":"at-%d","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-%d"%s}`, n, n, extra)
	}))
	t.Cleanup(srv.Close)
	cfg = &oauth2.Config{ClientID: "id", Endpoint: oauth2.Endpoint{TokenURL: srv.URL, AuthStyle: oauth2.AuthStyleInParams}}
	return cfg, func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// storedRecord returns the record st holds under DefaultKey.
func storedRecord(t *testing.T, st store.Store) *record.Record {
	t.Helper()
	r, err := record.Load(context.Background(), st, DefaultKey)
	require.NoError(t, err)
	require.NotNil(t, r)
	return r
}

// A refresh answer may leave the ID token out (OpenID Connect Core
// §12.2): the stored record keeps the one before, in the process that
// got it and in one that starts from a stored record past its expiry, so
// that tokenmgr status still shows who signed in. Before, the first such
// refresh saved a record without it.
func TestRefreshWithoutIDTokenKeepsTheStoredOne(t *testing.T) {
	cfg, _ := idTokenEndpoint(t, "idt-1")
	st := store.NewMemory()
	stored := func() *record.Record { return storedRecord(t, st) }

	c := newTestClient(t, Config{Source: RefreshToken(cfg, "rt-0"), Store: st})
	tok, err := c.Token(context.Background())
	require.NoError(t, err)
	require.Equal(t, "idt-1", stored().IDToken)
	c.Invalidate(tok)
	tok, err = c.Token(context.Background())
	require.NoError(t, err)
	require.Equal(t, "at-2", tok.AccessToken)
	assert.Equal(t, "idt-1", stored().IDToken, "kept across a refresh without one")

	// Another process, from a stored record past its expiry.
	r := stored()
	r.IDToken, r.Expiry = "idt-stored", time.Now().Add(-time.Minute)
	b, err := r.Encode()
	require.NoError(t, err)
	require.NoError(t, st.Save(context.Background(), DefaultKey, b))
	c2 := newTestClient(t, Config{Source: RefreshToken(cfg, "rt-seed"), Store: st})
	tok, err = c2.Token(context.Background())
	require.NoError(t, err)
	require.Equal(t, "at-3", tok.AccessToken)
	assert.Equal(t, "idt-stored", stored().IDToken, "kept from the stored record")
	assert.Equal(t, "rt-3", stored().RefreshToken)
}

// The ID token a refresh without one keeps is the one that came with the
// refresh token it redeemed, never another sign-in's: when someone else
// signs in under the key (a sign-in whose answer had no ID token) while a
// long-running process holds the first person's, and when the Source does
// not redeem the stored refresh token at all (its tokens are not that
// sign-in's). Before, both saved the first person's ID token with tokens
// that were not theirs, and tokenmgr status showed them signed in.
func TestKeptIDTokenIsTheSignInsOwn(t *testing.T) {
	cfg, redeemed := idTokenEndpoint(t, "idt-alice")
	st := store.NewMemory()
	stored := func() *record.Record { return storedRecord(t, st) }
	save := func(r *record.Record) {
		b, err := r.Encode()
		require.NoError(t, err)
		require.NoError(t, st.Save(context.Background(), DefaultKey, b))
	}

	c := newTestClient(t, Config{Source: RefreshToken(cfg, "rt-0"), Store: st})
	tok, err := c.Token(context.Background())
	require.NoError(t, err)
	require.Equal(t, "idt-alice", stored().IDToken)

	// Bob signs in elsewhere; his sign-in's answer had no ID token.
	bob := stored()
	bob.AccessToken, bob.RefreshToken, bob.IDToken = "at-bob", "rt-bob", ""
	bob.Obtained, bob.Expiry = time.Now().Add(time.Second), time.Now().Add(-time.Minute)
	save(bob)
	c.Invalidate(tok)
	_, err = c.Token(context.Background())
	require.NoError(t, err)
	require.Equal(t, []string{"rt-0", "rt-bob"}, redeemed())
	assert.Equal(t, "rt-2", stored().RefreshToken)
	assert.Empty(t, stored().IDToken, "Bob's refreshed sign-in holds no ID token of Alice's")

	// A Source that does not take the stored refresh token (no
	// fingerprint, so the record counts as its own).
	alice := stored()
	alice.IDToken, alice.Expiry = "idt-alice", time.Now().Add(-time.Minute)
	save(alice)
	other := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "at-other", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)})
	c2 := newTestClient(t, Config{Source: other, Store: st})
	tok, err = c2.Token(context.Background())
	require.NoError(t, err)
	require.Equal(t, "at-other", tok.AccessToken)
	assert.Equal(t, "at-other", stored().AccessToken)
	assert.Empty(t, stored().IDToken, "another Source's token is saved without the sign-in's ID token")
}
