package tokenmgrtest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

func ccConfig(s *tokenmgrtest.Server) *clientcredentials.Config {
	return &clientcredentials.Config{ClientID: s.ClientID, ClientSecret: s.ClientSecret, TokenURL: s.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}
}

func refreshConfig(s *tokenmgrtest.Server) *oauth2.Config {
	return &oauth2.Config{ClientID: s.ClientID, ClientSecret: s.ClientSecret, Endpoint: oauth2.Endpoint{TokenURL: s.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}}
}

// api calls the server's API with tok and returns the status and body.
func api(t *testing.T, s *tokenmgrtest.Server, tok string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, s.URL+"/v1/x", nil)
	require.NoError(t, err)
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := s.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp.StatusCode, string(b)
}

func retrieveError(t *testing.T, err error) *oauth2.RetrieveError {
	t.Helper()
	var re *oauth2.RetrieveError
	require.True(t, errors.As(err, &re), "want an *oauth2.RetrieveError, got %v", err)
	return re
}

func TestClientCredentials(t *testing.T) {
	s := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: 90 * time.Second})
	defer s.Close()
	tok, err := ccConfig(s).Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, "Bearer", tok.TokenType)
	assert.WithinDuration(t, time.Now().Add(90*time.Second), tok.Expiry, 5*time.Second)
	assert.True(t, s.Valid(tok.AccessToken))

	code, body := api(t, s, tok.AccessToken)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "hello from /v1/x", body)

	// Credentials in the form are accepted too (client_secret_post).
	cc := ccConfig(s)
	cc.AuthStyle = oauth2.AuthStyleInParams
	_, err = cc.Token(context.Background())
	require.NoError(t, err)
	assert.EqualValues(t, 2, s.TokenRequests.Load())
	assert.EqualValues(t, 2, s.Issued.Load())
	assert.EqualValues(t, 1, s.APIRequests.Load())
}

func TestWrongClientSecret(t *testing.T) {
	s := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer s.Close()
	cc := ccConfig(s)
	cc.ClientSecret = "wrong"
	_, err := cc.Token(context.Background())
	re := retrieveError(t, err)
	assert.Equal(t, http.StatusUnauthorized, re.Response.StatusCode)
	assert.Equal(t, "invalid_client", re.ErrorCode)
	assert.Zero(t, s.Issued.Load())
}

func TestAPIRejectsRevokedExpiredAndUnknownTokens(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	s := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: time.Minute, Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}})
	defer s.Close()
	a, err := ccConfig(s).Token(context.Background())
	require.NoError(t, err)
	b, err := ccConfig(s).Token(context.Background())
	require.NoError(t, err)

	s.Revoke(a.AccessToken)
	code, body := api(t, s, a.AccessToken)
	assert.Equal(t, http.StatusForbidden, code)
	assert.Equal(t, tokenmgrtest.AWSInvalidClientTokenId, body)
	code, _ = api(t, s, b.AccessToken)
	assert.Equal(t, http.StatusOK, code, "only the revoked token is rejected")

	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	assert.False(t, s.Valid(b.AccessToken))
	code, _ = api(t, s, b.AccessToken)
	assert.Equal(t, http.StatusForbidden, code, "expired")
	code, _ = api(t, s, "")
	assert.Equal(t, http.StatusForbidden, code, "no token")
	assert.EqualValues(t, 3, s.Rejected.Load())
}

func TestRefreshTokenRotation(t *testing.T) {
	s := tokenmgrtest.NewServer(tokenmgrtest.Options{Rotate: true})
	defer s.Close()
	rt := s.IssueRefreshToken()
	tok, err := refreshConfig(s).TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
	require.NoError(t, err)
	require.NotEmpty(t, tok.RefreshToken)
	assert.NotEqual(t, rt, tok.RefreshToken, "rotated")

	_, err = refreshConfig(s).TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
	assert.Equal(t, "invalid_grant", retrieveError(t, err).ErrorCode, "a used refresh token is dead")
	assert.EqualValues(t, 1, s.InvalidGrants.Load())

	s.RevokeRefreshToken(tok.RefreshToken)
	_, err = refreshConfig(s).TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	assert.Equal(t, "invalid_grant", retrieveError(t, err).ErrorCode, "revoked")
}

func TestRefreshTokenWithoutRotationIsReusable(t *testing.T) {
	s := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer s.Close()
	rt := s.IssueRefreshToken()
	for range 2 {
		tok, err := refreshConfig(s).TokenSource(context.Background(), &oauth2.Token{RefreshToken: rt}).Token()
		require.NoError(t, err)
		assert.Equal(t, rt, tok.RefreshToken, "no new refresh token: x/oauth2 keeps the old one")
	}
}

func TestTokenEndpointRequestErrors(t *testing.T) {
	s := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer s.Close()
	post := func(form url.Values) (int, string) {
		req, err := http.NewRequest(http.MethodPost, s.TokenURL(), strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(s.ClientID, s.ClientSecret)
		resp, err := s.Client().Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
		return resp.StatusCode, string(b)
	}
	code, body := post(url.Values{"grant_type": {"password"}})
	assert.Equal(t, http.StatusBadRequest, code)
	assert.JSONEq(t, `{"error":"unsupported_grant_type"}`, body)

	resp, err := s.Client().Get(s.TokenURL())
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
}

func TestSetHookAndLifetime(t *testing.T) {
	s := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer s.Close()
	s.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/token" {
			return false
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
		return true
	})
	_, err := ccConfig(s).Token(context.Background())
	assert.Equal(t, http.StatusServiceUnavailable, retrieveError(t, err).Response.StatusCode)
	assert.EqualValues(t, 1, s.TokenRequests.Load(), "counted before the hook")
	assert.Zero(t, s.Issued.Load())

	s.SetHook(nil)
	s.SetLifetime(1500 * time.Millisecond)
	tok, err := ccConfig(s).Token(context.Background())
	require.NoError(t, err)
	// expires_in is whole seconds, rounded up.
	assert.WithinDuration(t, time.Now().Add(2*time.Second), tok.Expiry, time.Second)
}

// TestInMemoryTransportInSynctest: in a synctest bubble, with the
// in-memory transport, a token expires as soon as the fake clock passes
// its lifetime, and no goroutine is left on a socket.
func TestInMemoryTransportInSynctest(t *testing.T) {
	s := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer s.Close()
	synctest.Test(t, func(t *testing.T) {
		hc := &http.Client{Transport: s.InMemoryTransport()}
		ctx := context.WithValue(context.Background(), oauth2.HTTPClient, hc)
		tok, err := ccConfig(s).Token(ctx)
		require.NoError(t, err)
		assert.Equal(t, time.Now().Add(time.Hour), tok.Expiry)

		get := func() int {
			req, err := http.NewRequest(http.MethodGet, s.URL+"/v1/x", nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			resp, err := hc.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			return resp.StatusCode
		}
		assert.Equal(t, http.StatusOK, get())
		time.Sleep(time.Hour)
		assert.Equal(t, http.StatusForbidden, get(), "expired in fake time")
	})

	_, err := (&http.Client{Transport: s.InMemoryTransport()}).Get("http://elsewhere.example/")
	assert.ErrorContains(t, err, "reaches only")
}
