package logintest_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/login"
	"github.com/tokenmgr/tokenmgr/login/logintest"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
)

func start(t testing.TB, opts logintest.Options) *logintest.Provider {
	t.Helper()
	p, err := logintest.Start(opts)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

// prompt is a concurrency-safe Prompt writer.
type prompt struct {
	mu sync.Mutex
	b  strings.Builder
}

func (p *prompt) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.b.Write(b)
}

func (p *prompt) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.b.String()
}

// config is a public client's sign-in at p, kept in st, the person
// played by p.Browse and p.ApproveDevice.
func config(p *logintest.Provider, st store.Store) login.Config {
	return login.Config{
		Issuer: p.Issuer, ClientID: p.PublicClientID,
		Scopes:       []string{"openid", "email", "profile", "offline_access"},
		OpenURL:      p.Browse,
		OnDeviceCode: func(da *oauth2.DeviceAuthResponse) { p.ApproveDevice(da.UserCode) },
		Store:        st, Prompt: &prompt{},
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func stored(t testing.TB, st store.Store, key string) *record.Record {
	t.Helper()
	r, err := record.Load(context.Background(), st, key)
	require.NoError(t, err)
	return r
}

// The browser login: PKCE, state, nonce, the code exchanged, the ID token
// verified, and the result saved; a Client serves it without a request
// and refreshes it through the real refresh grant with rotation.
func TestBrowserLoginThenClient(t *testing.T) {
	p := start(t, logintest.Options{})
	st := store.NewMemory()
	cfg := config(p, st)
	tok, err := login.Browser(ctxT(t), cfg)
	require.NoError(t, err)
	assert.NotEmpty(t, tok.AccessToken)
	assert.NotEmpty(t, tok.RefreshToken)

	r := stored(t, st, "default")
	require.NotNil(t, r)
	assert.Equal(t, tok.AccessToken, r.AccessToken)
	assert.Equal(t, tok.RefreshToken, r.RefreshToken)
	assert.NotEmpty(t, r.IDToken, "the verified ID token is kept for status")

	tokenRequests := p.Requests("/oauth/token")
	c, err := login.NewClient(ctxT(t), cfg)
	require.NoError(t, err)
	defer c.Close()
	got, err := c.Token(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, tok.AccessToken, got.AccessToken, "the stored token is served while fresh")
	assert.Equal(t, tokenRequests, p.Requests("/oauth/token"), "no request at start")

	// A rejected token: the Client refreshes with the saved refresh
	// token; the provider rotates it, and the new one is saved.
	c.Invalidate(got)
	fresh, err := c.Token(ctxT(t))
	require.NoError(t, err)
	assert.NotEqual(t, tok.AccessToken, fresh.AccessToken)
	assert.EqualValues(t, 1, p.Rotations())
	r2 := stored(t, st, "default")
	assert.Equal(t, fresh.AccessToken, r2.AccessToken)
	assert.NotEqual(t, tok.RefreshToken, r2.RefreshToken, "the rotated refresh token is saved")
	assert.NotEmpty(t, r2.IDToken)
}

func TestDeviceLogin(t *testing.T) {
	p := start(t, logintest.Options{})
	st := store.NewMemory()
	cfg := config(p, st)
	var shown *oauth2.DeviceAuthResponse
	cfg.OnDeviceCode = func(da *oauth2.DeviceAuthResponse) { shown = da; p.ApproveDevice(da.UserCode) }
	tok, err := login.Device(ctxT(t), cfg)
	require.NoError(t, err)
	assert.NotEmpty(t, tok.RefreshToken)
	require.NotNil(t, shown)
	assert.True(t, strings.HasPrefix(shown.VerificationURI, p.Issuer+"/device"), shown.VerificationURI)
	assert.NotEmpty(t, stored(t, st, "default").IDToken)
}

// NewClient with nothing to serve: the error names tokenmgr login.
func TestNewClientLoginRequired(t *testing.T) {
	p := start(t, logintest.Options{})
	cfg := config(p, nil)
	_, err := login.NewClient(ctxT(t), cfg)
	require.ErrorIs(t, err, tokenmgr.ErrLoginRequired)
	assert.Contains(t, err.Error(), "tokenmgr login")

	cfg.Store = store.NewMemory()
	c, err := login.NewClient(ctxT(t), cfg)
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Token(ctxT(t))
	require.ErrorIs(t, err, tokenmgr.ErrLoginRequired)
	assert.Contains(t, err.Error(), "tokenmgr login")
	assert.Zero(t, p.Requests("/oauth/token"), "nothing to redeem: no request")
}

// The issuer refuses the saved refresh token (signed out elsewhere): the
// error is ErrLoginRequired, and the stored sign-in is not replaced.
func TestRevokedRefreshTokenIsLoginRequired(t *testing.T) {
	p := start(t, logintest.Options{})
	st := store.NewMemory()
	cfg := config(p, st)
	tok, err := login.Browser(ctxT(t), cfg)
	require.NoError(t, err)
	p.RevokeAll()
	_, err = refreshOnce(t, cfg)
	require.ErrorIs(t, err, tokenmgr.ErrLoginRequired)
	assert.ErrorIs(t, err, tokenmgr.ErrInvalidGrant)
	assert.Contains(t, err.Error(), "tokenmgr login")
	assert.NotContains(t, err.Error(), tok.RefreshToken)
	assert.Equal(t, tok.RefreshToken, stored(t, st, "default").RefreshToken)
}

// refreshOnce builds cfg's Client, takes the stored token (no request),
// has it rejected, and returns the next Token: a refresh with the stored
// refresh token.
func refreshOnce(t *testing.T, cfg login.Config) (*oauth2.Token, error) {
	t.Helper()
	c, err := login.NewClient(ctxT(t), cfg)
	require.NoError(t, err)
	defer c.Close()
	tok, err := c.Token(ctxT(t))
	require.NoError(t, err)
	c.Invalidate(tok)
	return c.Token(ctxT(t))
}

// A confidential client signs in with its secret in a Basic header.
func TestConfidentialClientBrowserLogin(t *testing.T) {
	p := start(t, logintest.Options{})
	cfg := config(p, store.NewMemory())
	cfg.ClientID, cfg.ClientSecret = p.ConfidentialClientID, p.ClientSecret
	_, err := login.Browser(ctxT(t), cfg)
	require.NoError(t, err)
	_, err = refreshOnce(t, cfg)
	require.NoError(t, err, "refresh with the secret")
	assert.EqualValues(t, 1, p.Rotations())
}

// Without an issuer, Config.Endpoint is used as it is: no discovery, and
// no ID token kept (nothing could verify it).
func TestEndpointWithoutIssuer(t *testing.T) {
	p := start(t, logintest.Options{})
	st := store.NewMemory()
	cfg := config(p, st)
	cfg.Issuer = ""
	cfg.Endpoint = oauth2.Endpoint{AuthURL: p.Issuer + "/authorize", TokenURL: p.Issuer + "/oauth/token", DeviceAuthURL: p.Issuer + "/device_authorization"}
	_, err := login.Browser(ctxT(t), cfg)
	require.NoError(t, err)
	_, err = login.Device(ctxT(t), cfg)
	require.NoError(t, err)
	assert.Zero(t, p.Requests("/.well-known/openid-configuration"))
	r := stored(t, st, "default")
	assert.Empty(t, r.IDToken, "unverifiable: not kept")
	_, err = refreshOnce(t, cfg)
	require.NoError(t, err)
	assert.EqualValues(t, 1, p.Rotations())
}
