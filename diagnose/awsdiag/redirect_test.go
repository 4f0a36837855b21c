package awsdiag

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/tokenmgr/tokenmgr/awscreds/ststest"
	"github.com/tokenmgr/tokenmgr/diagnose"
)

// tokenmgr doctor (Run) follows no redirect either. Its signed
// GetCallerIdentity carries the session token in X-Amz-Security-Token,
// which net/http keeps on a redirect to another host (it drops only
// Authorization): an endpoint that answers AssumeRoleWithWebIdentity and
// redirects GetCallerIdentity (and the unsigned GET that reads its clock)
// elsewhere gets nothing sent elsewhere, with Run's default client or
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
				opts := Options{Lookup: mapLookup(env)} // default: a plain client with Timeout
				if client == "caller" {
					opts.HTTPClient = &http.Client{} // net/http's default CheckRedirect
				}

				m := checksByName(t, Run(t.Context(), opts), append(secretsOf(upstream), wit)...)
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
