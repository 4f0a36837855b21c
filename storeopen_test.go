package tokenmgr

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/store"
)

func envLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// The root package cannot import the Redis store's module: without the
// import, TOKENMGR_STORE=redis is an error saying which package to import.
func TestRedisStoreNeedsItsImport(t *testing.T) {
	e, err := ParseEnv(envLookup(map[string]string{"TOKENMGR_STORE": "redis", "TOKENMGR_REDIS_URL": "redis://:pw@localhost"}))
	require.NoError(t, err)
	assert.Equal(t, "redis", e.Store)
	assert.Equal(t, "redis://:pw@localhost", e.RedisURL)
	_, err = e.OpenStore(context.Background())
	var ee *EnvError
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "TOKENMGR_STORE", ee.Var)
	assert.Contains(t, err.Error(), `import _ "github.com/tokenmgr/tokenmgr/store/redisstore"`)
	assert.NotContains(t, err.Error(), "pw")

	_, err = ParseEnv(envLookup(map[string]string{"TOKENMGR_STORE": "postgres"}))
	require.ErrorAs(t, err, &ee)
	assert.Contains(t, err.Error(), "auto, keyring, file, memory, redis")
	assert.True(t, IsSecretVar("TOKENMGR_REDIS_URL"), "the URL may hold a password")
}

// unregister removes test registrations when t ends.
func unregister(t *testing.T, names ...string) {
	t.Cleanup(func() {
		storeOpeners.mu.Lock()
		defer storeOpeners.mu.Unlock()
		for _, n := range names {
			delete(storeOpeners.m, n)
		}
	})
}

func TestRegisterStore(t *testing.T) {
	unregister(t, "test-registered", "test-failing")
	opened := store.NewMemory()
	var got *Env
	RegisterStore("test-registered", func(_ context.Context, e *Env) (store.Store, error) {
		got = e
		return opened, nil
	})
	e, err := ParseEnv(envLookup(map[string]string{"TOKENMGR_STORE": "test-registered"}))
	require.NoError(t, err)
	st, err := e.OpenStore(context.Background())
	require.NoError(t, err)
	assert.Same(t, opened, st)
	assert.Same(t, e, got)

	assert.Panics(t, func() {
		RegisterStore("test-registered", func(context.Context, *Env) (store.Store, error) { return nil, nil })
	})
	assert.Panics(t, func() { RegisterStore("file", func(context.Context, *Env) (store.Store, error) { return nil, nil }) })
	assert.Panics(t, func() { RegisterStore("x", nil) })

	RegisterStore("test-failing", func(context.Context, *Env) (store.Store, error) { return nil, errors.New("boom") })
	e, err = ParseEnv(envLookup(map[string]string{"TOKENMGR_STORE": "test-failing"}))
	require.NoError(t, err)
	_, err = e.OpenStore(context.Background())
	require.ErrorContains(t, err, "boom")
}

// An opener is someone else's code: a panic (quoting the passphrase) is an
// error with the passphrase redacted, a nil pointer is no store, and a
// store returned with an error is closed and not returned: every failure
// gives a true nil.
func TestRegisteredOpenerFailures(t *testing.T) {
	unregister(t, "test-panics", "test-typed-nil", "test-store-and-error")
	RegisterStore("test-panics", func(_ context.Context, e *Env) (store.Store, error) {
		panic("cannot open with " + string(e.StorePassphrase))
	})
	RegisterStore("test-typed-nil", func(context.Context, *Env) (store.Store, error) {
		var m *closingStore
		return m, nil
	})
	half := &closingStore{}
	RegisterStore("test-store-and-error", func(context.Context, *Env) (store.Store, error) {
		return half, errors.New("half open")
	})
	open := func(name string) (store.Store, error) {
		e, err := ParseEnv(envLookup(map[string]string{"TOKENMGR_STORE": name, "TOKENMGR_STORE_PASSPHRASE": "opener-s3cret-pass"}))
		require.NoError(t, err)
		return e.OpenStore(context.Background())
	}

	st, err := open("test-panics")
	assert.Nil(t, st)
	var pe *PanicError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, pe.Value, "cannot open with")
	assert.NotContains(t, err.Error(), "opener-s3cret-pass")

	st, err = open("test-typed-nil")
	assert.Nil(t, st)
	require.ErrorContains(t, err, `the "test-typed-nil" store opener returned no store`)

	st, err = open("test-store-and-error")
	assert.Nil(t, st)
	require.ErrorContains(t, err, "half open")
	assert.Equal(t, int32(1), half.closes.Load(), "the half-open store is closed")
}

// closingStore counts its Close calls.
type closingStore struct {
	store.Store
	closes atomic.Int32
}

func (s *closingStore) Close() error { s.closes.Add(1); return nil }

// A store NewFromEnv opened belongs to the Client: the first Close closes
// it (a Redis store's connection pool would otherwise outlive the Client).
func TestNewFromEnvClosesTheStoreItOpened(t *testing.T) {
	unregister(t, "test-closing")
	st := &closingStore{Store: store.NewMemory()}
	RegisterStore("test-closing", func(context.Context, *Env) (store.Store, error) { return st, nil })
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
