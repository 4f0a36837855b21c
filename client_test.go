package tokenmgr

// The Client's surface: construction, Close, TokenSource.

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
