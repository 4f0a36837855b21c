package tokenmgr

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
)

// saveQuotingStore panics in Save with the record it was given, as a
// buggy Store might.
type saveQuotingStore struct{ store.Store }

// awsSecretSource is a Source whose tokens carry an AWS secret key in an
// extra, which it names as a SecretHolder (as awscreds' source does).
type awsSecretSource struct{ tokenFunc }

func (awsSecretSource) Secrets(tok *oauth2.Token) []string {
	if tok == nil {
		return nil
	}
	if s, ok := tok.Extra(record.ExtraAWSSecretAccessKey).(string); ok {
		return []string{s}
	}
	return nil
}

func (s saveQuotingStore) Save(_ context.Context, _ string, data []byte) error {
	panic("cannot save " + string(data))
}

// A panic whose value quotes the token being saved (not yet in service)
// is redacted: the access token, refresh token, ID token and AWS secret
// key of the new token never reach the *PanicError.
func TestPanicInSaveRedactsTheNewToken(t *testing.T) {
	tok := (&oauth2.Token{AccessToken: "new-access-token-1", RefreshToken: "new-refresh-token-1", TokenType: "Bearer",
		Expiry: time.Now().Add(time.Hour)}).WithExtra(map[string]any{
		"id_token": "new-id-token-1", record.ExtraAWSSecretAccessKey: "aws-secret-key-1", record.ExtraAWSAccessKeyID: "AKIDEXAMPLE",
	})
	c := newTestClient(t, Config{Source: awsSecretSource{func() (*oauth2.Token, error) { return tok, nil }},
		Store: saveQuotingStore{store.NewMemory()}})
	_, err := c.Token(context.Background())
	var pe *PanicError
	require.ErrorAs(t, err, &pe)
	assert.Contains(t, pe.Value, "cannot save", "the panic value is kept")
	for _, s := range []string{"new-access-token-1", "new-refresh-token-1", "new-id-token-1", "aws-secret-key-1"} {
		assert.NotContains(t, err.Error(), s)
	}
}

// A panic in Attach quoting the token it was handed is redacted even when
// that token has left service meanwhile (another request's rejection, or a
// background refresh, replaced it while Attach ran): the Client's redactor
// knows only the tokens in service, dropped last and being saved.
func TestPanicInAttachRedactsItsTokenOutOfService(t *testing.T) {
	var n int
	src := awsSecretSource{func() (*oauth2.Token, error) {
		n++
		return (&oauth2.Token{AccessToken: fmt.Sprintf("attach-token-%d", n), TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}).
			WithExtra(map[string]any{record.ExtraAWSSecretAccessKey: fmt.Sprintf("attach-aws-secret-%d", n)}), nil
	}}
	var c *Client
	c = newTestClient(t, Config{Source: src, Attach: func(r *http.Request, tok *oauth2.Token) error {
		// Two replacements while this request is being signed.
		for range 2 {
			cur, err := c.Token(r.Context())
			if err != nil {
				return err
			}
			c.Invalidate(cur)
		}
		if _, err := c.Token(r.Context()); err != nil {
			return err
		}
		panic(fmt.Sprintf("cannot sign with %s / %v", tok.AccessToken, tok.Extra(record.ExtraAWSSecretAccessKey)))
	}})
	req, err := http.NewRequest("GET", "https://api.example.com/x", nil)
	require.NoError(t, err)
	_, err = c.Transport(&recordingRT{}).RoundTrip(req)
	var pe *PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "Attach", pe.Where)
	assert.Contains(t, pe.Value, "cannot sign with", "the panic value is kept")
	assert.NotContains(t, err.Error(), "attach-token-1")
	assert.NotContains(t, err.Error(), "attach-aws-secret-1")
}
