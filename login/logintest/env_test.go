package logintest_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/login"
	"github.com/tokenmgr/tokenmgr/login/logintest"
	"github.com/tokenmgr/tokenmgr/store"
)

// NewFromEnv with TOKENMGR_ISSUER serves the signed-in credential (the
// login package, imported, registered its source), refreshing it at the
// discovered token endpoint.
func TestNewFromEnvServesTheSignIn(t *testing.T) {
	p := start(t, logintest.Options{})
	path := filepath.Join(t.TempDir(), "tokens.enc")
	st, err := store.NewEncryptedFile(path, []byte("pass"))
	require.NoError(t, err)
	cfg := config(p, st)
	tok, err := login.Browser(ctxT(t), cfg)
	require.NoError(t, err)

	t.Setenv("TOKENMGR_ISSUER", p.Issuer)
	t.Setenv("TOKENMGR_CLIENT_ID", p.PublicClientID)
	t.Setenv("TOKENMGR_SCOPES", "openid email profile offline_access")
	t.Setenv("TOKENMGR_STORE", "file")
	t.Setenv("TOKENMGR_STORE_PATH", path)
	t.Setenv("TOKENMGR_STORE_PASSPHRASE", "pass")
	c, err := tokenmgr.NewFromEnv()
	require.NoError(t, err)
	defer c.Close()
	got, err := c.Token(ctxT(t))
	require.NoError(t, err)
	assert.Equal(t, tok.AccessToken, got.AccessToken)
	c.Invalidate(got)
	fresh, err := c.Token(ctxT(t))
	require.NoError(t, err)
	assert.NotEqual(t, tok.AccessToken, fresh.AccessToken)
	assert.EqualValues(t, 1, p.Rotations())

	// Other scopes: another configuration, which neither adopts this
	// sign-in nor overwrites it.
	t.Setenv("TOKENMGR_SCOPES", "openid")
	c2, err := tokenmgr.NewFromEnv()
	require.NoError(t, err)
	defer c2.Close()
	_, err = c2.Token(ctxT(t))
	assert.ErrorIs(t, err, tokenmgr.ErrKeyInUse)
}
