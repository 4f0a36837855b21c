package awscreds

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/store"
)

// A registered store (TOKENMGR_STORE=redis is one) gets the variables it
// reads: Env.OpenStore must pass TOKENMGR_REDIS_URL through with the other
// store variables.
func TestOpenStorePassesTheRedisURL(t *testing.T) {
	// Registered once per process: RegisterStore panics on a second
	// registration, which killed the test binary under -count=2.
	registerShared.Do(func() {
		envconfig.RegisterStore("awscreds-test-shared", func(_ context.Context, e *envconfig.Env) (store.Store, error) {
			sharedURL.Store(&e.RedisURL)
			return store.NewMemory(), nil
		})
	})
	sharedURL.Store(nil)
	vars := map[string]string{
		"AWS_ROLE_ARN": testRole, "AWS_REGION": "us-east-1", "AWS_WEB_IDENTITY_TOKEN_FILE": "/dev/null",
		"TOKENMGR_STORE": "awscreds-test-shared", "TOKENMGR_REDIS_URL": "redis://127.0.0.1:6379/0",
		"TOKENMGR_STORE_PASSPHRASE": "pass phrase",
	}
	e, err := ReadEnv(func(n string) (string, bool) { v, ok := vars[n]; return v, ok })
	require.NoError(t, err)
	st, err := e.OpenStore(context.Background())
	require.NoError(t, err)
	require.NotNil(t, st)
	got := sharedURL.Load()
	require.NotNil(t, got, "the registered store was opened")
	require.Equal(t, "redis://127.0.0.1:6379/0", *got)
}

var (
	registerShared sync.Once
	sharedURL      atomic.Pointer[string] // the TOKENMGR_REDIS_URL awscreds-test-shared was opened with
)
