package tokenmgr

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
