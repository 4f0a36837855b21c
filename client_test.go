package tokenmgr

// The Client's surface: construction, Close, TokenSource.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

func TestNewRequiresSource(t *testing.T) {
	_, err := New(Config{})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Source")
}

func TestClosedClient(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	c, err := New(Config{Source: ClientCredentials(ccConfig(srv))})
	require.NoError(t, err)
	require.NoError(t, c.Close())
	_, err = c.Token(context.Background())
	require.ErrorIs(t, err, ErrClosed)
	assert.True(t, errors.Is(err, ErrClosed))
}

func TestTokenSourceComesBackForTheEarlyRefresh(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: time.Hour})
	defer srv.Close()
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv))})
	tok, err := c.TokenSource().Token()
	require.NoError(t, err)
	direct, err := c.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, direct.AccessToken, tok.AccessToken)
	// Expiry moved up so a ReuseTokenSource (10s delta) asks again exactly
	// when the refresh window opens, 5 minutes before the real expiry.
	assert.True(t, direct.Expiry.Add(-5*time.Minute+10*time.Second).Equal(tok.Expiry), "%v vs %v", direct.Expiry, tok.Expiry)
}

func TestTokenSourceExpiryNeverLaterThanReal(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: 4 * time.Second})
	defer srv.Close()
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv))})
	real, err := c.Token(context.Background())
	require.NoError(t, err)
	early, err := c.TokenSource().Token()
	require.NoError(t, err)
	assert.False(t, early.Expiry.After(real.Expiry))
}

// The client secret and refresh token go over plain http to loopback only,
// from Go as from TOKENMGR_TOKEN_URL: New refuses the package's sources
// with a token URL in the clear, AllowInsecureHTTP or not, and names the
// URL without its password.
func TestNewRefusesCleartextTokenURL(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  oauth2.TokenSource
	}{
		{"client credentials", ClientCredentials(&clientcredentials.Config{ClientID: "id", ClientSecret: "s3cret", TokenURL: "http://u:pw-s3cret@auth.example.com/token"})},
		{"refresh token", RefreshToken(&oauth2.Config{ClientID: "id", ClientSecret: "s3cret", Endpoint: oauth2.Endpoint{TokenURL: "HTTP://10.0.0.7:8080/token"}}, "rt-s3cret")},
	} {
		for _, insecure := range []bool{false, true} {
			c, err := New(Config{Source: tc.src, AllowInsecureHTTP: insecure})
			require.Error(t, err, tc.name)
			assert.Nil(t, c)
			assert.Contains(t, err.Error(), "plain http sends the client secret in the clear", tc.name)
			assert.NotContains(t, err.Error(), "s3cret", tc.name)
		}
	}
	for _, ok := range []string{"https://auth.example.com/token", "http://127.0.0.1:8080/token", "http://localhost/token", "http://[::1]/token", ""} {
		c, err := New(Config{Source: ClientCredentials(&clientcredentials.Config{ClientID: "id", ClientSecret: "s", TokenURL: ok})})
		require.NoError(t, err, ok)
		require.NoError(t, c.Close())
	}
}
