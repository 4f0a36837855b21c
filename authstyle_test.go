package tokenmgr_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// basicOnly makes s answer as a server whose client is registered for
// client_secret_basic does (ORY Hydra, Keycloak): credentials in the form
// body are refused with invalid_client naming the methods, and a scope
// outside allowed is refused with invalid_scope.
func basicOnly(s *tokenmgrtest.Server, allowed string) {
	s.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/token" {
			return false
		}
		r.ParseForm()
		id, secret, basic := r.BasicAuth()
		switch {
		case !basic:
			oauthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method). The OAuth 2.0 Client supports client authentication method 'client_secret_basic', but method 'client_secret_post' was requested. You must configure the OAuth 2.0 client's 'token_endpoint_auth_method' value to accept 'client_secret_post'.")
			return true
		case id != s.ClientID || secret != s.ClientSecret:
			oauthError(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed: the client secret is wrong.")
			return true
		}
		for _, sc := range strings.Fields(r.PostForm.Get("scope")) {
			if sc != allowed {
				oauthError(w, http.StatusBadRequest, "invalid_scope", "The requested scope is invalid: the client may not ask for "+sc+".")
				return true
			}
		}
		return false
	})
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write([]byte(`{"error":"` + code + `","error_description":"` + desc + `"}`))
}

// With the auth style left to detection, the error reported is the cause
// the server gave (invalid_scope, or the wrong secret), not its complaint
// about the form-body attempt x/oauth2 makes next (issue 11 §6).
func TestAutoAuthStyleReportsTheServersCause(t *testing.T) {
	s := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer s.Close()
	basicOnly(s, "read")
	ctx := context.Background()
	fetch := func(secret string, scopes ...string) error {
		c, err := tokenmgr.New(tokenmgr.Config{Source: tokenmgr.ClientCredentials(&clientcredentials.Config{
			ClientID: s.ClientID, ClientSecret: secret, TokenURL: s.TokenURL(), Scopes: scopes})})
		require.NoError(t, err)
		defer c.Close()
		_, err = c.Token(ctx)
		return err
	}

	err := fetch(s.ClientSecret, "read", "admin")
	require.Error(t, err)
	assert.ErrorIs(t, err, tokenmgr.ErrInvalidScope, "%v", err)
	assert.Contains(t, err.Error(), "may not ask for admin")

	err = fetch("wrong-secret")
	require.Error(t, err)
	assert.ErrorIs(t, err, tokenmgr.ErrInvalidClient)
	assert.Contains(t, err.Error(), "client secret is wrong")
	assert.NotContains(t, err.Error(), "client_secret_post")

	// The refresh_token grant too.
	src := tokenmgr.RefreshToken(&oauth2.Config{ClientID: s.ClientID, ClientSecret: "wrong-secret",
		Endpoint: oauth2.Endpoint{TokenURL: s.TokenURL()}}, s.IssueRefreshToken()).(tokenmgr.ContextSource)
	_, err = src.TokenContext(ctx)
	var re *oauth2.RetrieveError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, "invalid_client", re.ErrorCode)
	assert.Contains(t, re.ErrorDescription, "client secret is wrong")

	require.NoError(t, fetch(s.ClientSecret, "read"))
}

// A server that takes the credentials only in the form body (as Google's
// does) is still found, and the source then asks it that way at once.
func TestAutoAuthStyleLearnsTheFormBody(t *testing.T) {
	s := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer s.Close()
	s.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if _, _, basic := r.BasicAuth(); basic && r.URL.Path == "/token" {
			oauthError(w, http.StatusBadRequest, "invalid_request", "credentials go in the body")
			return true
		}
		return false
	})
	src := tokenmgr.ClientCredentials(&clientcredentials.Config{ClientID: s.ClientID, ClientSecret: s.ClientSecret, TokenURL: s.TokenURL()})
	for i := range 3 {
		_, err := src.Token()
		require.NoError(t, err, "call %d", i)
	}
	assert.Equal(t, int64(4), s.TokenRequests.Load(), "one probe with the header, then the body every time")

	// A network error is not retried the other way.
	s.Close()
	dead := tokenmgr.ClientCredentials(&clientcredentials.Config{ClientID: s.ClientID, ClientSecret: s.ClientSecret, TokenURL: s.TokenURL()})
	_, err := dead.Token()
	var te *tokenmgr.TokenError
	assert.False(t, errors.As(err, &te) && te.Code != "", "%v", err)
}
