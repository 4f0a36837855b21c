package awscreds

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr"
)

// An STS endpoint that answers with a redirect (a proxy or a mistyped
// AWS_ENDPOINT_URL_STS) is not followed, with the SDK's client or the
// caller's (whose CheckRedirect would follow a 302 as a GET, and a 307
// with the body if it could rewind it): the web identity token goes to the
// endpoint configured and nowhere else. Retrieve fails at the first
// answer (one STS call, no retries until the deadline) with a
// *RedirectError naming the endpoint and the status, a permanent
// *tokenmgr.TokenError, remembered for a backoff like STS's own refusals.
func TestSTSRedirectNotFollowedNorRetried(t *testing.T) {
	for _, code := range []int{301, 302, 303, 307, 308} {
		for _, client := range []string{"sdk", "caller"} {
			t.Run(strconv.Itoa(code)+"/"+client, func(t *testing.T) {
				t.Parallel()
				var followed atomic.Int64
				elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					followed.Add(1)
					http.Error(w, "not STS", http.StatusForbidden)
				}))
				t.Cleanup(elsewhere.Close)
				var calls atomic.Int64
				redirecting := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					calls.Add(1)
					// Echoing the web identity token, which the error blanks.
					http.Redirect(w, r, elsewhere.URL+"/sts/"+r.PostFormValue("WebIdentityToken")+"?X-Amz-Foo=bar", code)
				}))
				t.Cleanup(redirecting.Close)
				f := newFixture(t, nil, func(c *Config) {
					c.STSEndpoint = redirecting.URL
					c.HTTPClient = nil // the SDK's default transport
					if client == "caller" {
						c.HTTPClient = &http.Client{} // net/http's default CheckRedirect
					}
				})

				// On a wrong classification the refresh engine would retry
				// until this deadline: the bound keeps such a failure quick.
				ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
				defer cancel()
				_, err := f.p.Retrieve(ctx)
				require.Error(t, err)
				assert.Zero(t, followed.Load(), "the redirect was followed")
				assert.EqualValues(t, 1, calls.Load(), "retried a redirect")
				require.NoError(t, ctx.Err(), "Retrieve waited for its deadline instead of failing at once: %v", err)

				require.ErrorIs(t, err, ErrRedirect)
				var re *RedirectError
				require.ErrorAs(t, err, &re)
				assert.Equal(t, redirecting.URL+"/", re.Endpoint)
				assert.Equal(t, code, re.StatusCode)
				assert.Equal(t, elsewhere.URL+"/sts/[REDACTED]", re.Location, "the Location, without its query")
				var te *tokenmgr.TokenError
				require.ErrorAs(t, err, &te)
				assert.False(t, te.Temporary)
				assert.Equal(t, code, te.StatusCode)
				assert.Contains(t, err.Error(), redirecting.URL)
				assert.Contains(t, err.Error(), strconv.Itoa(code))
				assert.NotContains(t, err.Error(), "web-identity-token-1")

				// Remembered for a backoff: the next call does not reach STS.
				_, err = f.p.Retrieve(ctx)
				require.ErrorIs(t, err, ErrRedirect)
				assert.EqualValues(t, 1, calls.Load())
				assert.Zero(t, followed.Load())
			})
		}
	}
}
