package awscreds

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/awscreds/ststest"
)

// TestObserverSeesSTS: Config.Observer reaches the Provider's Client: each
// STS call is a token request (a refused web identity with its
// *tokenmgr.TokenError), and each refresh is observed with its attempts.
func TestObserverSeesSTS(t *testing.T) {
	var mu sync.Mutex
	var got []string
	obs := &tokenmgr.Observer{
		TokenRequest: func(_ context.Context, key string, attempt int, err error) {
			code := ""
			var te *tokenmgr.TokenError
			if errors.As(err, &te) {
				code = te.Code
			}
			mu.Lock()
			got = append(got, fmt.Sprintf("request %s #%d %q", key, attempt, code))
			mu.Unlock()
		},
		RefreshDone: func(_ context.Context, ev tokenmgr.RefreshEvent) {
			mu.Lock()
			got = append(got, fmt.Sprintf("done %s %s attempts=%d failed=%v", ev.Key, ev.Reason, ev.Attempts, ev.Err != nil))
			mu.Unlock()
		},
	}
	f := newFixture(t, nil, func(c *Config) { c.Observer = obs })
	f.srv.FailNext(ststest.ErrInvalidIdentityToken)
	_, err := f.p.Retrieve(context.Background())
	require.Error(t, err)
	// A new Provider: the first holds the failure off for a while.
	f2 := newFixture(t, f.srv, func(c *Config) { c.Observer = obs })
	_, err = f2.p.Retrieve(context.Background())
	require.NoError(t, err)
	key := "aws:" + testRole
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{
		fmt.Sprintf("request %s #1 %q", key, "InvalidIdentityToken"),
		"done " + key + " initial attempts=1 failed=true",
		fmt.Sprintf("request %s #1 %q", key, ""),
		"done " + key + " initial attempts=1 failed=false",
	}, got)
}

// TestObserverSeesConfigureRejections: the rejections Configure's
// middleware replays, and those it returns while a host is damped, reach
// Config.Observer as the root transport's do; a panic in it is logged and
// the call goes on.
func TestObserverSeesConfigureRejections(t *testing.T) {
	var mu sync.Mutex
	var got []string
	obs := &tokenmgr.Observer{
		Rejected: func(_ context.Context, key, host, code string, replayed bool) {
			mu.Lock()
			got = append(got, fmt.Sprintf("rejected %s %s replayed=%v", host, code, replayed))
			mu.Unlock()
		},
		HeldOff: func(_ context.Context, key, cause, host string) {
			mu.Lock()
			got = append(got, "heldoff "+cause+" "+host)
			mu.Unlock()
			panic("observer broke")
		},
	}
	f := newFixture(t, nil, func(c *Config) { c.Observer = obs })
	cfg := awsConfig(f.srv)
	f.p.Configure(&cfg)
	_, err := callerIdentity(t.Context(), cfg)
	require.NoError(t, err)
	f.srv.RevokeAll()
	_, err = callerIdentity(t.Context(), cfg)
	require.NoError(t, err)
	f.srv.RejectAll(true)
	for range 3 {
		_, err = callerIdentity(t.Context(), cfg)
		require.Error(t, err)
	}
	u, err := url.Parse(f.srv.URL)
	require.NoError(t, err)
	host := u.Hostname() + ":" + u.Port()
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{
		"rejected " + host + " InvalidClientTokenId replayed=true",  // revoked: replayed
		"rejected " + host + " InvalidClientTokenId replayed=true",  // rejected: replayed once
		"rejected " + host + " InvalidClientTokenId replayed=false", // the fresh ones too
		"rejected " + host + " InvalidClientTokenId replayed=false", // then damped
		"heldoff damping " + host,
		"rejected " + host + " InvalidClientTokenId replayed=false",
		"heldoff damping " + host,
	}, got)
	assert.Contains(t, f.logs.String(), "Config.Observer panicked")
}
