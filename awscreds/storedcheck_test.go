package awscreds

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
)

// A stored record whose session token or key ID could not go in a header
// (a corrupt or hand-edited store) is not adopted: every signed request
// would fail until it expired, never rejected by a server and so never
// replaced. STS is asked instead, as for credentials it answered so.
func TestStoredCredentialsUnfitForAHeaderNotAdopted(t *testing.T) {
	for name, spoil := range map[string]func(*record.Record){
		"session token": func(r *record.Record) { r.AccessToken = r.AccessToken[:8] + "\n" + r.AccessToken[8:] },
		"key ID":        func(r *record.Record) { r.AWSAccessKeyID += " x" },
	} {
		t.Run(name, func(t *testing.T) {
			st := store.NewMemory()
			f1 := newFixture(t, nil, func(c *Config) { c.Store = st })
			_, err := f1.p.Retrieve(t.Context())
			require.NoError(t, err)
			r, err := record.Load(t.Context(), st, f1.p.Key())
			require.NoError(t, err)
			spoil(r)
			b, err := r.Encode()
			require.NoError(t, err)
			require.NoError(t, st.Save(t.Context(), f1.p.Key(), b))

			f2 := newFixture(t, f1.srv, func(c *Config) { c.Store, c.WebIdentityTokenFile = st, f1.file })
			_, ok, err := f2.p.Stored(t.Context())
			assert.False(t, ok)
			assert.ErrorContains(t, err, "the record holds", "Stored says what is wrong, for a diagnosis")
			creds, err := f2.p.Retrieve(t.Context())
			require.NoError(t, err)
			assert.NotEqual(t, r.AccessToken, creds.SessionToken, "the spoilt record was adopted")
			assert.EqualValues(t, 2, f1.srv.AssumeCalls())
			assert.Contains(t, f2.logs.String(), "not usable")
			_, ok, err = f2.p.Stored(t.Context())
			require.NoError(t, err)
			assert.True(t, ok, "the new credentials replaced the spoilt record")
		})
	}
}
