package awscreds

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/awscreds/ststest"
	"github.com/tokenmgr/tokenmgr/diagnose"
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
				assert.NotEmpty(t, Explain(err, 0).Hint)

				// Remembered for a backoff: the next call does not reach STS.
				_, err = f.p.Retrieve(ctx)
				require.ErrorIs(t, err, ErrRedirect)
				assert.EqualValues(t, 1, calls.Load())
				assert.Zero(t, followed.Load())
			})
		}
	}
}

// tokenmgr doctor (Diagnose) follows no redirect either. Its signed
// GetCallerIdentity carries the session token in X-Amz-Security-Token,
// which net/http keeps on a redirect to another host (it drops only
// Authorization): an endpoint that answers AssumeRoleWithWebIdentity and
// redirects GetCallerIdentity (and the unsigned GET that reads its clock)
// elsewhere gets nothing sent elsewhere, with Diagnose's default client or
// the caller's, and the diagnosis names the redirect.
func TestDiagnoseRedirectNotFollowed(t *testing.T) {
	for _, code := range []int{302, 307} {
		for _, client := range []string{"default", "caller"} {
			t.Run(strconv.Itoa(code)+"/"+client, func(t *testing.T) {
				var followed atomic.Int64
				elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					followed.Add(1)
					http.Error(w, "not STS", http.StatusForbidden)
				}))
				t.Cleanup(elsewhere.Close)
				upstream := ststest.NewHandler()
				front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					body, err := io.ReadAll(r.Body)
					if err != nil {
						http.Error(w, err.Error(), http.StatusBadRequest)
						return
					}
					if r.Method == http.MethodGet || strings.Contains(string(body), "Action=GetCallerIdentity") {
						http.Redirect(w, r, elsewhere.URL+"/", code)
						return
					}
					r.Body = io.NopCloser(bytes.NewReader(body))
					upstream.ServeHTTP(w, r)
				}))
				t.Cleanup(front.Close)
				_, env, wit := diagnoseEnv(t, time.Now().Add(time.Hour))
				env["AWS_ENDPOINT_URL_STS"] = front.URL
				opts := DiagnoseOptions{Lookup: mapLookup(env)} // default: a plain client with Timeout
				if client == "caller" {
					opts.HTTPClient = &http.Client{} // net/http's default CheckRedirect
				}

				m := checksByName(t, Diagnose(t.Context(), opts), append(secretsOf(upstream), wit)...)
				assert.Zero(t, followed.Load(), "a redirect was followed")
				assert.EqualValues(t, 1, upstream.AssumeCalls())
				assert.Equal(t, diagnose.OK, m["clock (STS)"].Status, "the endpoint's own Date: %s", m["clock (STS)"])
				assert.Equal(t, diagnose.OK, m["sts"].Status, "%s", m["sts"])
				c := m["aws credentials"]
				assert.Equal(t, diagnose.Fail, c.Status)
				assert.Contains(t, c.Message, "GetCallerIdentity")
				assert.Contains(t, c.Message, front.URL)
				assert.Contains(t, c.Message, strconv.Itoa(code))
				assert.Contains(t, c.Message, "not followed: the request carries the session token")
				assert.Contains(t, c.Hint, "AWS_ENDPOINT_URL_STS")
				assert.Contains(t, c.Hint, "the session token is sent to it alone")
			})
		}
	}
}
