package awscreds

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/awscreds/ststest"
	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// closingStore is a memory store that counts its Close calls and records
// any use after the first one (as a closed Redis pool would fail).
type closingStore struct {
	store.Store
	closes         atomic.Int32
	usedAfterClose atomic.Bool
}

func (s *closingStore) Close() error { s.closes.Add(1); return nil }

func (s *closingStore) check() error {
	if s.closes.Load() > 0 {
		s.usedAfterClose.Store(true)
		return errors.New("closingStore: used after Close")
	}
	return nil
}

func (s *closingStore) Load(ctx context.Context, key string) ([]byte, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return s.Store.Load(ctx, key)
}

func (s *closingStore) Save(ctx context.Context, key string, data []byte) error {
	if err := s.check(); err != nil {
		return err
	}
	return s.Store.Save(ctx, key, data)
}

// closingStores are the stores TOKENMGR_STORE=awscreds-test-closing opens,
// by TOKENMGR_REDIS_URL (registered once, so -count=N works).
var (
	closingStores   sync.Map // string → *closingStore
	registerClosing sync.Once
)

// newClosingStore returns the store TOKENMGR_STORE=awscreds-test-closing
// with TOKENMGR_REDIS_URL=name opens.
func newClosingStore(t *testing.T, name string) *closingStore {
	registerClosing.Do(func() {
		envconfig.RegisterStore("awscreds-test-closing", func(_ context.Context, e *envconfig.Env) (store.Store, error) {
			st, ok := closingStores.Load(e.RedisURL)
			if !ok {
				return nil, errors.New("no closingStore named " + e.RedisURL)
			}
			return st.(*closingStore), nil
		})
	})
	st := &closingStore{Store: store.NewMemory()}
	closingStores.Store(name, st)
	t.Cleanup(func() { closingStores.Delete(name) })
	return st
}

// A store Env.NewProvider opened (TOKENMGR_STORE=redis opens a connection
// pool) belongs to the Provider: its first Close closes it once, after the
// refreshes stopped, however many goroutines call Close; NewProvider
// closes it itself when it fails. A Config.Store stays the caller's.
func TestNewProviderClosesTheStoreItOpened(t *testing.T) {
	srv := ststest.NewServer()
	t.Cleanup(srv.Close)
	idp := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	t.Cleanup(idp.Close)
	tokFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokFile, []byte("web-identity"), 0o600))
	for _, tc := range []struct {
		name string
		env  map[string]string
	}{
		{"token file", map[string]string{"AWS_WEB_IDENTITY_TOKEN_FILE": tokFile}},
		{"oauth", map[string]string{
			"TOKENMGR_TOKEN_URL": idp.TokenURL(), "TOKENMGR_CLIENT_ID": idp.ClientID, "TOKENMGR_CLIENT_SECRET": idp.ClientSecret,
		}},
	} {
		env := func(storeName string) func(string) (string, bool) {
			m := map[string]string{
				"AWS_ROLE_ARN": testRole, "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_STS": srv.URL,
				"TOKENMGR_STORE": "awscreds-test-closing", "TOKENMGR_REDIS_URL": storeName,
			}
			for k, v := range tc.env {
				m[k] = v
			}
			return mapLookup(m)
		}
		t.Run(tc.name, func(t *testing.T) {
			st := newClosingStore(t, t.Name())
			e, err := ReadEnv(env(t.Name()))
			require.NoError(t, err)
			p, err := e.NewProvider(t.Context())
			require.NoError(t, err)
			_, err = p.Retrieve(t.Context())
			require.NoError(t, err)
			assert.Zero(t, st.closes.Load(), "open while the Provider is")

			var wg sync.WaitGroup
			for range 8 {
				wg.Go(func() { assert.NoError(t, p.Close()) })
			}
			wg.Wait()
			assert.Equal(t, int32(1), st.closes.Load(), "closed once, by the first Close")
			require.NoError(t, p.Close())
			assert.Equal(t, int32(1), st.closes.Load(), "a later Close does not close it again")
			assert.False(t, st.usedAfterClose.Load(), "the store was used after it was closed")
		})
		t.Run(tc.name+" failing", func(t *testing.T) {
			st := newClosingStore(t, t.Name())
			e, err := ReadEnv(env(t.Name()))
			require.NoError(t, err)
			e.RoleSessionName = "x" // too short: New refuses it once the store is open
			_, err = e.NewProvider(t.Context())
			require.ErrorContains(t, err, "RoleSessionName")
			assert.Equal(t, int32(1), st.closes.Load(), "a failed NewProvider closes the store it opened")
		})
	}

	// A store passed in Config stays the caller's.
	st := &closingStore{Store: store.NewMemory()}
	p, err := New(Config{RoleARN: testRole, Region: "us-east-1", STSEndpoint: srv.URL, WebIdentityTokenFile: tokFile, Store: st})
	require.NoError(t, err)
	_, err = p.Retrieve(t.Context())
	require.NoError(t, err)
	require.NoError(t, p.Close())
	require.NoError(t, p.Close())
	assert.Zero(t, st.closes.Load(), "a Config.Store is the caller's to close")
}
