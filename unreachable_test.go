package tokenmgr_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
)

// unreachableClient is a Client whose refreshes give up after
// refreshTimeout. Where the first attempt should fail for good, the timeout
// is a bound, long enough for a TLS handshake or a DNS lookup on a loaded
// machine: a deadline there would hide the error under test.
func unreachableClient(t *testing.T, tokenURL string, refreshTimeout time.Duration) *tokenmgr.Client {
	t.Helper()
	c, err := tokenmgr.New(tokenmgr.Config{
		Source:         tokenmgr.ClientCredentials(&clientcredentials.Config{ClientID: "c", ClientSecret: "s3cret", TokenURL: tokenURL}),
		RefreshTimeout: refreshTimeout,
	})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// A host name that does not exist is not retried: asking again cannot
// mend a typo.
func TestNoSuchHostIsNotRetried(t *testing.T) {
	c := unreachableClient(t, "https://no-such-host.invalid/token", 15*time.Second)
	_, err := c.Token(context.Background())
	var te *tokenmgr.TokenError
	require.ErrorAs(t, err, &te)
	var de *net.DNSError
	require.ErrorAs(t, err, &de, "%v", err)
	if !de.IsNotFound {
		t.Skipf("this resolver does not answer NXDOMAIN for .invalid: %v", de)
	}
	assert.False(t, te.Temporary)
	assert.LessOrEqual(t, te.Attempts, 1)
	assert.NotContains(t, err.Error(), "attempts")
}

// A refused connection is retried until the refresh deadline, and the
// error says how many attempts were made.
func TestRetriedErrorCountsAttempts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	c := unreachableClient(t, "http://"+addr+"/token", 2*time.Second) // retried until then
	_, err = c.Token(context.Background())
	var te *tokenmgr.TokenError
	require.ErrorAs(t, err, &te)
	assert.True(t, te.Temporary)
	assert.Greater(t, te.Attempts, 1)
	assert.Contains(t, err.Error(), "attempts)")
	assert.False(t, errors.Is(err, tokenmgr.ErrInvalidClient))
}

// A certificate this machine does not trust is not retried either.
func TestUntrustedCertificateIsNotRetried(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	c := unreachableClient(t, srv.URL+"/token", 15*time.Second) // http.DefaultClient: the test CA is not trusted
	_, err := c.Token(context.Background())
	var te *tokenmgr.TokenError
	require.ErrorAs(t, err, &te)
	assert.False(t, te.Temporary, "%v", err)
	assert.LessOrEqual(t, te.Attempts, 1)
	assert.Contains(t, err.Error(), "certificate")
}
