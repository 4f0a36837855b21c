package tokenmgr

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/store"
)

// closingStore counts its Close calls.
var (
	closingStoreOnce sync.Once
	closingStoreNext atomic.Pointer[closingStore]
)

type closingStore struct {
	store.Store
	closes atomic.Int32
}

func (s *closingStore) Close() error { s.closes.Add(1); return nil }

// A store NewFromEnv opened belongs to the Client: the first Close closes
// it (a Redis store's connection pool would otherwise outlive the Client).
func TestNewFromEnvClosesTheStoreItOpened(t *testing.T) {
	st := &closingStore{Store: store.NewMemory()}
	closingStoreNext.Store(st)
	closingStoreOnce.Do(func() {
		// Registered once per process (RegisterStore panics on a second
		// registration; -count runs the test again).
		envconfig.RegisterStore("test-closing", func(context.Context, *envconfig.Env) (store.Store, error) {
			return closingStoreNext.Load(), nil
		})
	})
	for k, v := range map[string]string{
		"TOKENMGR_TOKEN_URL": "https://auth.example.com/token", "TOKENMGR_CLIENT_ID": "id",
		"TOKENMGR_CLIENT_SECRET": "secret", "TOKENMGR_STORE": "test-closing",
	} {
		t.Setenv(k, v)
	}
	c, err := NewFromEnv()
	require.NoError(t, err)
	assert.Zero(t, st.closes.Load(), "open while the Client is")
	require.NoError(t, c.Close())
	require.NoError(t, c.Close())
	assert.Equal(t, int32(1), st.closes.Load(), "closed once, by the first Close")

	// adjust changes the Config: a Store it sets stays the caller's, and
	// the one the variables named is closed at once.
	st3 := &closingStore{Store: store.NewMemory()}
	c, err = NewFromEnv(func(cfg *Config) { cfg.Store = st3 }, func(cfg *Config) { cfg.Key = "adjusted" })
	require.NoError(t, err)
	assert.Equal(t, "tokenmgr.Client(adjusted)", c.String(), "every adjust func ran")
	assert.Equal(t, int32(2), st.closes.Load(), "the replaced store is closed")
	require.NoError(t, c.Close())
	assert.Zero(t, st3.closes.Load(), "the caller's store stays open")

	// A store passed in Config stays the caller's.
	st2 := &closingStore{Store: store.NewMemory()}
	c, err = New(Config{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "x"}), Store: st2})
	require.NoError(t, err)
	require.NoError(t, c.Close())
	assert.Zero(t, st2.closes.Load())
}
