package awscreds

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
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

// bodyQuotingTransport panics quoting the request's body.
type bodyQuotingTransport struct{}

func (bodyQuotingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	b, _ := io.ReadAll(r.Body)
	panic("cannot send " + string(b))
}

// A panic in the STS call (Config.HTTPClient's transport) quoting the
// request does not show the web identity token in its body: the Cache
// that turns the panic into an error knows the credentials' secrets, not
// the token they are fetched with.
func TestPanicInSTSCallRedactsTheWebIdentityToken(t *testing.T) {
	for _, wit := range []string{"web-identity-token-1", "eyJhbGciOi+J9/x=.sig"} { // the second quoted %-escaped
		f := newFixture(t, nil, func(c *Config) { c.HTTPClient = &http.Client{Transport: bodyQuotingTransport{}} })
		require.NoError(t, os.WriteFile(f.file, []byte(wit), 0o600))
		_, err := f.p.Retrieve(t.Context())
		var pe *tokenmgr.PanicError
		require.ErrorAs(t, err, &pe)
		assert.Contains(t, pe.Value, "cannot send Action=AssumeRoleWithWebIdentity")
		for _, s := range []string{wit, url.QueryEscape(wit)} {
			assert.NotContains(t, pe.Value, s)
			assert.NotContains(t, err.Error(), s)
		}
	}
}
