package awscreds

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/store"
)

type saveQuotingStore struct{ store.Store }

func (s saveQuotingStore) Save(_ context.Context, _ string, data []byte) error {
	panic("cannot save " + string(data))
}

// A panic quoting the new credentials (a Store's Save) does not show the
// secret access key: the source names it to its tokenmgr.Cache in
// Kind.Secrets, where the root package had the AWS extra's name
// hard-coded.
func TestPanicRedactsTheSecretAccessKey(t *testing.T) {
	f := newFixture(t, nil, func(c *Config) { c.Store = saveQuotingStore{store.NewMemory()} })
	_, err := f.p.Retrieve(t.Context())
	var pe *tokenmgr.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, pe.Value, "cannot save")
	require.NotEmpty(t, f.srv.Sessions())
	for _, s := range secretsOf(f.srv) {
		assert.NotContains(t, err.Error(), s)
	}
}
