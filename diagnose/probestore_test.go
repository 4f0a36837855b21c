package diagnose_test

import (
	"context"
	"net/http"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/diagnose"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// A refresh token stored by another configuration (another token URL) is
// never sent to this configuration's token endpoint by the credentials
// check, as a Client would not send it: the probe keeps the record's
// configuration fingerprint.
func TestRunDoesNotRedeemAnotherConfigurationsRefreshToken(t *testing.T) {
	a := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer a.Close()
	b := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer b.Close()
	storeVars := vars{"TOKENMGR_STORE": "file", "TOKENMGR_STORE_PATH": filepath.Join(t.TempDir(), "tokens"),
		"TOKENMGR_STORE_PASSPHRASE": "correct horse battery staple"}
	with := func(more vars) vars {
		v := vars{}
		for k, x := range storeVars {
			v[k] = x
		}
		for k, x := range more {
			v[k] = x
		}
		return v
	}

	// Configuration A stores its refresh token.
	rtA := a.IssueRefreshToken()
	envA, err := tokenmgr.ReadEnv(with(vars{"TOKENMGR_TOKEN_URL": a.TokenURL(), "TOKENMGR_CLIENT_ID": a.ClientID,
		"TOKENMGR_CLIENT_SECRET": a.ClientSecret, "TOKENMGR_REFRESH_TOKEN": rtA}).lookup)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := envA.Config(ctx)
	require.NoError(t, err)
	c, err := tokenmgr.New(cfg)
	require.NoError(t, err)
	_, err = c.Token(ctx)
	require.NoError(t, err)
	require.NoError(t, c.Close())

	// Configuration B, same store and key, another endpoint.
	var mu sync.Mutex
	var presented []string
	b.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" && r.ParseForm() == nil {
			mu.Lock()
			presented = append(presented, r.PostForm.Get("refresh_token"))
			mu.Unlock()
		}
		return false
	})
	rtB := b.IssueRefreshToken()
	envB := with(vars{"TOKENMGR_TOKEN_URL": b.TokenURL(), "TOKENMGR_CLIENT_ID": b.ClientID,
		"TOKENMGR_CLIENT_SECRET": b.ClientSecret, "TOKENMGR_REFRESH_TOKEN": rtB})
	r := diagnose.Run(context.Background(), diagnose.Options{Lookup: envB.lookup, Timeout: 5 * time.Second})
	assert.Equal(t, diagnose.OK, check(t, r, "credentials").Status, "%v", r.Checks)
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, presented)
	assert.NotContains(t, presented, rtA, "configuration A's refresh token went to B's token endpoint")
	assert.Contains(t, presented, rtB)
}
