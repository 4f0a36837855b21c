package tokenmgr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/internal/oauthtest"
	"github.com/tokenmgr/tokenmgr/store"
)

// Regressions found in review, each with the behaviour it pins down.

func TestInvalidateWithStoreFetchesANewToken(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{})
	defer srv.Close()
	c, _ := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), Store: store.NewMemory()}, nil)
	t1, err := c.Token(context.Background())
	require.NoError(t, err)
	c.Invalidate(t1)
	t2, err := c.Token(context.Background())
	require.NoError(t, err)
	assert.NotEqual(t, t1.AccessToken, t2.AccessToken, "the rejected token is not taken back from the store")
	assert.EqualValues(t, 2, srv.TokenRequests.Load())
}

func TestUnrewindableRejectionWithStoreNextRequestGetsNewToken(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{})
	defer srv.Close()
	c, _ := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), Store: store.NewMemory()}, nil)
	t1, err := c.Token(context.Background())
	require.NoError(t, err)
	srv.Revoke(t1.AccessToken)
	hc := c.HTTPClient()
	req, _ := http.NewRequest("POST", srv.URL+"/api", io.NopCloser(strings.NewReader("x")))
	req.GetBody = nil
	resp, err := hc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, err = hc.Get(srv.URL + "/api")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.EqualValues(t, 1, srv.Rejected.Load())
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
	srv := oauthtest.New(oauthtest.Options{Rotate: true, Lifetime: time.Hour})
	defer srv.Close()
	st := &flakyStore{Store: store.NewMemory()}
	cfg := &oauth2.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, Endpoint: oauth2.Endpoint{TokenURL: srv.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}}
	c, _ := newTestClient(t, Config{Source: RefreshToken(cfg, srv.IssueRefreshToken()), Store: st}, nil)
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

func TestAlwaysRejectingAPIIsDamped(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{})
	defer srv.Close()
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/api" {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="wrong audience"`)
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		return false
	})
	clk := newFakeClock()
	c, _ := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv))}, clk)
	hc := c.HTTPClient()
	call := func() {
		resp, err := hc.Get(srv.URL + "/api")
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
	for range 20 {
		call()
	}
	assert.EqualValues(t, 2, srv.TokenRequests.Load(), "one replay, then damped")
	clk.Add(1500 * time.Millisecond) // past the first backoff: one more try
	for range 20 {
		call()
	}
	assert.EqualValues(t, 3, srv.TokenRequests.Load())
	assert.EqualValues(t, 2, c.Stats().Replays)
}

func TestNilBodyRejectionDoesNotPanic(t *testing.T) {
	c, _ := newTestClient(t, Config{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "k"})}, nil)
	n := 0
	hc := &http.Client{Transport: c.Transport(rtFunc(func(r *http.Request) (*http.Response, error) {
		n++
		if n == 1 {
			return &http.Response{StatusCode: 401, Header: http.Header{}, Request: r}, nil
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	}))}
	resp, err := hc.Get("https://api.example.com/x")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode, "a static token cannot be replaced: the answer is passed on")
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestErrorValueHoldsNoCredentials(t *testing.T) {
	for _, style := range []oauth2.AuthStyle{oauth2.AuthStyleInHeader, oauth2.AuthStyleInParams} {
		srv := oauthtest.New(oauthtest.Options{})
		cc := ccConfig(srv)
		cc.ClientSecret, cc.AuthStyle = "wrong-secret-1234", style
		c, _ := newTestClient(t, Config{Source: ClientCredentials(cc)}, nil)
		_, err := c.Token(context.Background())
		var re *oauth2.RetrieveError
		require.ErrorAs(t, err, &re)
		require.NotNil(t, re.Response, "the answer is kept")
		assert.Nil(t, re.Response.Request, "the request, with its credentials, is not")
		assert.NotContains(t, fmt.Sprintf("%+v %#v", err, re), "wrong-secret-1234")
		srv.Close()
	}
}

func TestEnvGoStringHidesSecrets(t *testing.T) {
	e, err := ReadEnv(func(n string) (string, bool) {
		v, ok := map[string]string{"TOKENMGR_TOKEN_URL": "https://auth.example.com/t", "TOKENMGR_CLIENT_ID": "id", "TOKENMGR_CLIENT_SECRET": "s3cr3t-value"}[n]
		return v, ok
	})
	require.NoError(t, err)
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		assert.NotContains(t, fmt.Sprintf(f, e), "s3cr3t-value", f)
		assert.NotContains(t, fmt.Sprintf(f, *e), "s3cr3t-value", f)
	}
}

func TestTokenSourceExpiryNeverLaterThanReal(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{Lifetime: 4 * time.Second})
	defer srv.Close()
	c, _ := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv))}, nil)
	real, err := c.Token(context.Background())
	require.NoError(t, err)
	early, err := c.TokenSource().Token()
	require.NoError(t, err)
	assert.False(t, early.Expiry.After(real.Expiry))
}

func TestStoredTokenOfAnotherConfigurationIsNotAdopted(t *testing.T) {
	srv := oauthtest.New(oauthtest.Options{})
	defer srv.Close()
	st := store.NewMemory()
	a, _ := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), Store: st}, nil)
	ta, err := a.Token(context.Background())
	require.NoError(t, err)

	// Same client, other scopes: a different configuration.
	cfg := ccConfig(srv)
	cfg.Scopes = []string{"admin"}
	b, _ := newTestClient(t, Config{Source: ClientCredentials(cfg), Store: st}, nil)
	tb, err := b.Token(context.Background())
	require.NoError(t, err)
	assert.NotEqual(t, ta.AccessToken, tb.AccessToken)
	assert.Zero(t, b.Stats().StoreLoads)

	// The same configuration again adopts what is stored.
	c, _ := newTestClient(t, Config{Source: ClientCredentials(cfg), Store: st}, nil)
	tc, err := c.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, tb.AccessToken, tc.AccessToken)
	assert.EqualValues(t, 1, c.Stats().StoreLoads)
}
