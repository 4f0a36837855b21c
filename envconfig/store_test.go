package envconfig

import (
	"context"
	"errors"
	"sync/atomic"
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
	e, err := Read(envLookup(map[string]string{"TOKENMGR_STORE": "redis", "TOKENMGR_REDIS_URL": "redis://:pw@localhost"}), NeedNothing)
	require.NoError(t, err)
	assert.Equal(t, "redis", e.Store)
	assert.Equal(t, "redis://:pw@localhost", e.RedisURL)
	_, err = e.OpenStore(context.Background())
	var ee *Error
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "TOKENMGR_STORE", ee.Var)
	assert.Contains(t, err.Error(), `import _ "github.com/tokenmgr/tokenmgr/store/redisstore"`)
	assert.NotContains(t, err.Error(), "pw")

	_, err = Read(envLookup(map[string]string{"TOKENMGR_STORE": "postgres"}), NeedNothing)
	require.ErrorAs(t, err, &ee)
	assert.Contains(t, err.Error(), "auto, keyring, file, memory, redis")
	assert.True(t, IsSecret("TOKENMGR_REDIS_URL"), "the URL may hold a password")
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
	e, err := Read(envLookup(map[string]string{"TOKENMGR_STORE": "test-registered"}), NeedNothing)
	require.NoError(t, err)
	st, err := e.OpenStore(context.Background())
	require.NoError(t, err)
	assert.Same(t, opened, st)
	assert.Same(t, e, got)

	assert.Panics(t, func() {
		RegisterStore("test-registered", func(context.Context, *Env) (store.Store, error) { return nil, nil })
	})
	assert.Panics(t, func() {
		RegisterStore("file", func(context.Context, *Env) (store.Store, error) { return nil, nil })
	})
	assert.Panics(t, func() { RegisterStore("x", nil) })

	RegisterStore("test-failing", func(context.Context, *Env) (store.Store, error) { return nil, errors.New("boom") })
	e, err = Read(envLookup(map[string]string{"TOKENMGR_STORE": "test-failing"}), NeedNothing)
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
		e, err := Read(envLookup(map[string]string{"TOKENMGR_STORE": name, "TOKENMGR_STORE_PASSPHRASE": "opener-s3cret-pass"}), NeedNothing)
		require.NoError(t, err)
		return e.OpenStore(context.Background())
	}

	st, err := open("test-panics")
	assert.Nil(t, st)
	require.ErrorIs(t, err, ErrOpenerPanic)
	assert.Contains(t, err.Error(), "cannot open with")
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
