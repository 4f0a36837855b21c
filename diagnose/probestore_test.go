package diagnose_test

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/diagnose"
	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// A refresh token stored by another configuration (another token URL) is
// never sent to this configuration's token endpoint by the credentials
// check, as a Client would not send it: the probe keeps the record's
// configuration fingerprint.
// storeForA stores, in a file store, the token and refresh token of a
// configuration at server a, and returns the store variables plus more.
func storeForA(t *testing.T, a *tokenmgrtest.Server) (rtA string, with func(vars) vars) {
	t.Helper()
	storeVars := vars{"TOKENMGR_STORE": "file", "TOKENMGR_STORE_PATH": filepath.Join(t.TempDir(), "tokens"),
		"TOKENMGR_STORE_PASSPHRASE": "correct horse battery staple"}
	with = func(more vars) vars {
		v := vars{}
		for k, x := range storeVars {
			v[k] = x
		}
		for k, x := range more {
			v[k] = x
		}
		return v
	}
	rtA = a.IssueRefreshToken()
	envA, err := envconfig.Read(with(vars{"TOKENMGR_TOKEN_URL": a.TokenURL(), "TOKENMGR_CLIENT_ID": a.ClientID,
		"TOKENMGR_CLIENT_SECRET": a.ClientSecret, "TOKENMGR_REFRESH_TOKEN": rtA}).lookup, envconfig.NeedCredential)
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := tokenmgr.ConfigFromEnv(ctx, envA)
	require.NoError(t, err)
	// The same file, made at a low scrypt cost: diagnose.Run reads it with
	// the file's parameters, and at the default cost (2^15) the race
	// detector on a loaded 2-core machine overran this context ("waiting
	// for a token: context deadline exceeded"), which this test is not about.
	cfg.Store, err = store.NewEncryptedFile(storeVars["TOKENMGR_STORE_PATH"], []byte(storeVars["TOKENMGR_STORE_PASSPHRASE"]), store.FileOptions{ScryptLogN: 10})
	require.NoError(t, err)
	c, err := tokenmgr.New(cfg)
	require.NoError(t, err)
	_, err = c.Token(ctx)
	require.NoError(t, err)
	require.NoError(t, c.Close())
	return rtA, with
}

// A refresh token stored by another configuration (another token URL) is
// never sent to this configuration's token endpoint by the credentials
// check, as a Client would not send it: the probe keeps the record's
// configuration fingerprint.
func TestRunDoesNotRedeemAnotherConfigurationsRefreshToken(t *testing.T) {
	a := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer a.Close()
	b := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer b.Close()
	rtA, with := storeForA(t, a)

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
	// Since ErrKeyInUse a Client of B would refuse A's record, so the
	// check does not redeem B's seed either (a rotated one could not be
	// saved): the store check says why.
	assert.Equal(t, diagnose.Skip, check(t, r, "credentials").Status, "%v", r.Checks)
	assert.Equal(t, diagnose.Fail, check(t, r, "store").Status, "%v", r.Checks)
	assert.Contains(t, check(t, r, "store").Message, "another configuration (refresh_token grant at "+a.TokenURL())
	assert.Contains(t, check(t, r, "store").Hint, "TOKENMGR_KEY")
	mu.Lock()
	defer mu.Unlock()
	assert.NotContains(t, presented, rtA, "configuration A's refresh token went to B's token endpoint")
	assert.NotContains(t, presented, rtB)
}

// The token inspected and sent to the check URL is one this configuration
// would use: not an access token another configuration stored under the
// same key, which a Client would not adopt.
func TestRunDoesNotSendAnotherConfigurationsTokenToTheCheckURL(t *testing.T) {
	a := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer a.Close()
	b := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer b.Close()
	_, with := storeForA(t, a)
	var mu sync.Mutex
	var sent []string // tokens the check URL got
	b.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && r.URL.Path == "/v1/things" {
			mu.Lock()
			sent = append(sent, tok)
			mu.Unlock()
		}
		return false
	})
	envB := with(vars{"TOKENMGR_TOKEN_URL": b.TokenURL(), "TOKENMGR_CLIENT_ID": b.ClientID,
		"TOKENMGR_CLIENT_SECRET": b.ClientSecret, "TOKENMGR_CHECK_URL": b.URL + "/v1/things"})
	r := diagnose.Run(context.Background(), diagnose.Options{Lookup: envB.lookup, Timeout: 5 * time.Second})
	assert.Equal(t, diagnose.OK, check(t, r, "check URL").Status, "%v", r.Checks)
	assert.Contains(t, check(t, r, "token format").Message, "fresh token")
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, sent, 1)
	assert.True(t, b.Valid(sent[0]), "B's API was sent a token configuration A stored")
}

// Run changes nothing stored when the server does not rotate the refresh
// token: neither another configuration's record nor this one's.
func TestRunLeavesTheStoreAloneWithoutRotation(t *testing.T) {
	a := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer a.Close()
	b := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer b.Close()
	_, with := storeForA(t, a)
	stored := func() []byte {
		e, err := envconfig.Read(with(nil).lookup, envconfig.NeedStore)
		require.NoError(t, err)
		st, err := e.OpenStore(context.Background())
		require.NoError(t, err)
		v, err := st.Load(context.Background(), tokenmgr.DefaultKey)
		require.NoError(t, err)
		return v
	}
	before := stored()
	for _, srv := range []*tokenmgrtest.Server{a, b} {
		env := with(vars{"TOKENMGR_TOKEN_URL": srv.TokenURL(), "TOKENMGR_CLIENT_ID": srv.ClientID,
			"TOKENMGR_CLIENT_SECRET": srv.ClientSecret, "TOKENMGR_REFRESH_TOKEN": srv.IssueRefreshToken()})
		r := diagnose.Run(context.Background(), diagnose.Options{Lookup: env.lookup, Timeout: 5 * time.Second})
		want := diagnose.OK
		if srv == b {
			want = diagnose.Skip // A's record under the key: see ErrKeyInUse
		}
		require.Equal(t, want, check(t, r, "credentials").Status, "%v", r.Checks)
		assert.Equal(t, before, stored(), "the stored record changed (doctor against %s)", srv.URL)
	}
}
