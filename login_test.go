package tokenmgr

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/envconfig"
)

// withLogin registers source as the login package would, for one test.
func withLogin(t *testing.T, source func(e *envconfig.Env) oauth2.TokenSource) {
	t.Helper()
	loginRegistry.mu.Lock()
	prev := loginRegistry.new
	loginRegistry.new = nil
	loginRegistry.mu.Unlock()
	RegisterLogin(source)
	t.Cleanup(func() {
		loginRegistry.mu.Lock()
		loginRegistry.new = prev
		loginRegistry.mu.Unlock()
	})
}

var issuerEnv = map[string]string{
	"TOKENMGR_ISSUER": "https://id.example.com", "TOKENMGR_CLIENT_ID": "cli", "TOKENMGR_STORE": "memory",
}

// Without the login package, TOKENMGR_ISSUER is an error that names the
// package to import, as TOKENMGR_STORE=redis names redisstore.
func TestIssuerNeedsTheLoginPackage(t *testing.T) {
	withLogin(t, func(*envconfig.Env) oauth2.TokenSource { return nil })
	loginRegistry.mu.Lock()
	loginRegistry.new = nil
	loginRegistry.mu.Unlock()

	e, err := envconfig.Read(mapLookup(issuerEnv), envconfig.NeedCredential)
	require.NoError(t, err)
	assert.Equal(t, "https://id.example.com", e.Issuer)
	_, err = ConfigFromEnv(context.Background(), e)
	var ee *envconfig.Error
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "TOKENMGR_ISSUER", ee.Var)
	assert.Contains(t, err.Error(), `import _ "github.com/tokenmgr/tokenmgr/login"`)
	_, err = SourceFromEnv(e).Token()
	assert.ErrorAs(t, err, &ee, "TokenSource fails the same way")
}

// With the login package registered, the Config serves its source with
// the store the variables name.
func TestIssuerUsesTheRegisteredSource(t *testing.T) {
	want := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "a"})
	var got *envconfig.Env
	withLogin(t, func(e *envconfig.Env) oauth2.TokenSource { got = e; return want })
	e, err := envconfig.Read(mapLookup(issuerEnv), envconfig.NeedCredential)
	require.NoError(t, err)
	cfg, err := ConfigFromEnv(context.Background(), e)
	require.NoError(t, err)
	assert.Equal(t, want, cfg.Source)
	assert.NotNil(t, cfg.Store, "the signed-in credential is kept in the store")
	assert.Same(t, e, got)
	assert.Panics(t, func() { RegisterLogin(func(*envconfig.Env) oauth2.TokenSource { return want }) }, "twice")
}

func TestIssuerEnvBad(t *testing.T) {
	for name, tc := range map[string]struct {
		env     map[string]string
		bad     string
		problem string
	}{
		"plain http":     {map[string]string{"TOKENMGR_ISSUER": "http://id.example.com", "TOKENMGR_CLIENT_ID": "c"}, "TOKENMGR_ISSUER", "plain http"},
		"not a URL":      {map[string]string{"TOKENMGR_ISSUER": "id.example.com", "TOKENMGR_CLIENT_ID": "c"}, "TOKENMGR_ISSUER", "absolute"},
		"no client":      {map[string]string{"TOKENMGR_ISSUER": "https://id.example.com"}, "TOKENMGR_CLIENT_ID", "TOKENMGR_ISSUER"},
		"with token URL": {map[string]string{"TOKENMGR_ISSUER": "https://id.example.com", "TOKENMGR_CLIENT_ID": "c", "TOKENMGR_TOKEN_URL": "https://id.example.com/t"}, "TOKENMGR_ISSUER", "set one"},
		"with refresh":   {map[string]string{"TOKENMGR_ISSUER": "https://id.example.com", "TOKENMGR_CLIENT_ID": "c", "TOKENMGR_REFRESH_TOKEN": envRefresh}, "TOKENMGR_ISSUER", "set one"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := envconfig.Read(mapLookup(tc.env), envconfig.NeedCredential)
			var ee *envconfig.Error
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, tc.bad, ee.Var)
			assert.Contains(t, err.Error(), tc.problem)
			assert.NotContains(t, err.Error(), envRefresh)
		})
	}
	// Loopback may be plain http.
	_, err := envconfig.Read(mapLookup(map[string]string{"TOKENMGR_ISSUER": "http://127.0.0.1:9/x", "TOKENMGR_CLIENT_ID": "c"}), envconfig.NeedCredential)
	assert.NoError(t, err)
}

func TestErrLoginRequiredNamesTheCommand(t *testing.T) {
	assert.Contains(t, ErrLoginRequired.Error(), "tokenmgr login")
	assert.True(t, errors.Is(errSource{ErrLoginRequired}.err, ErrLoginRequired))
}
