package diagnose_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/diagnose"
	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/store"
)

// A shared store's errors get hints about Redis, not about the file.
func TestHintsForASharedStore(t *testing.T) {
	down := fmt.Errorf("redisstore: Redis at 10.0.0.1:6379: load: %w (dial tcp: connection refused)", store.ErrUnavailable)
	assert.Contains(t, diagnose.Hint(down), "TOKENMGR_REDIS_URL")
	wrong := fmt.Errorf("redisstore: Redis at 10.0.0.1:6379: %w: the header record was made with another passphrase", store.ErrWrongKey)
	assert.Contains(t, diagnose.Hint(wrong), "same passphrase")
	assert.NotContains(t, diagnose.Hint(wrong), "file")
	assert.Contains(t, diagnose.Hint(&envconfig.Error{Var: "TOKENMGR_REDIS_URL", Problem: "not a URL"}), "rediss://")
	// A garbage or modified value in Redis: Redis words, not the file's.
	for _, sentinel := range []error{store.ErrFormat, store.ErrTampered} {
		bad := fmt.Errorf("redisstore: Redis at 10.0.0.1:6379 (prefix \"tokenmgr:\"): credential \"default\": %w: not a tokenmgr Redis store value (bad magic)", sentinel)
		h := diagnose.Hint(bad)
		assert.Contains(t, h, "Redis", "%v", sentinel)
		assert.NotContains(t, h, "file", "%v", sentinel)
		assert.NotContains(t, h, "TOKENMGR_STORE_PATH", "%v", sentinel)
	}
}

// A store under a shared sticky directory (/tmp) is moved, never fixed
// with a chmod of the directory other users need.
func TestHintForAStoreInASharedDirectory(t *testing.T) {
	err := fmt.Errorf("store: encrypted file /tmp/creds.enc: %w: directory /tmp (mode 1777) is writable by other users; keep the store in a directory of your own instead", store.ErrUnsafePermissions)
	h := diagnose.Hint(err)
	assert.Contains(t, h, "TOKENMGR_STORE_PATH")
	assert.NotContains(t, h, "chmod")
}

// A proxy that cannot be reached is blamed, not the token URL's host and
// port.
func TestExplainProxyFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	proxy := &url.URL{Scheme: "http", Host: ln.Addr().String()}
	require.NoError(t, ln.Close())
	env := &envconfig.Env{TokenURL: "https://auth.example.com/token", ClientID: "c", ClientSecret: "a-secret-1"}
	c, err := tokenmgr.New(tokenmgr.Config{
		Source:          tokenmgr.SourceFromEnv(env),
		TokenHTTPClient: &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}},
		RefreshTimeout:  300 * time.Millisecond,
	})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Token(context.Background())
	require.Error(t, err)
	msg, hint := diagnose.Explain(err, env)
	assert.Contains(t, msg, "proxyconnect")
	assert.Contains(t, hint, "HTTPS_PROXY")
	assert.Contains(t, hint, "NO_PROXY")
	assert.NotContains(t, hint, "nothing listens")
	assert.NotContains(t, msg+hint, "a-secret-1")
}
