package tokenmgr

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/envconfig"
)

const envRefresh = "rt-s3cr3t-RT9"

func mapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// A static TOKENMGR_ACCESS_TOKEN is served as it is, and needs no store.
func TestSourceFromEnvStatic(t *testing.T) {
	e, err := envconfig.Read(mapLookup(map[string]string{"TOKENMGR_ACCESS_TOKEN": "at-s3cr3t-AT7"}), envconfig.NeedCredential)
	require.NoError(t, err)
	tok, err := SourceFromEnv(e).Token()
	require.NoError(t, err)
	assert.Equal(t, "at-s3cr3t-AT7", tok.AccessToken)
	cfg, err := ConfigFromEnv(context.Background(), e)
	require.NoError(t, err)
	assert.Nil(t, cfg.Store)
}
