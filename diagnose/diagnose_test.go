package diagnose_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/diagnose"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

type vars map[string]string

func (v vars) lookup(name string) (string, bool) { x, ok := v[name]; return x, ok }

func check(t *testing.T, r *diagnose.Report, name string) diagnose.Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	require.FailNow(t, "no such check", "%q in %v", name, r.Checks)
	return diagnose.Check{}
}

func noSecret(t *testing.T, r *diagnose.Report, secrets ...string) {
	t.Helper()
	b, err := json.Marshal(r)
	require.NoError(t, err)
	for _, s := range secrets {
		assert.NotContains(t, string(b), s)
	}
}

func TestRunHealthy(t *testing.T) {
	s := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer s.Close()
	env := vars{"TOKENMGR_TOKEN_URL": s.TokenURL(), "TOKENMGR_CLIENT_ID": s.ClientID, "TOKENMGR_CLIENT_SECRET": s.ClientSecret,
		"TOKENMGR_STORE": "memory", "TOKENMGR_CHECK_URL": s.URL + "/v1/things"}
	r := diagnose.Run(context.Background(), diagnose.Options{Lookup: env.lookup, Timeout: 5 * time.Second})
	assert.True(t, r.OK(), "%v", r.Checks)
	assert.Equal(t, diagnose.OK, check(t, r, "credentials").Status)
	assert.Equal(t, diagnose.OK, check(t, r, "check URL").Status)
	noSecret(t, r, s.ClientSecret, "at-")
}

// The check URL obeys the transport's host rule: a trailing dot is another
// host for TOKENMGR_ALLOWED_HOSTS, and the token is not sent there.
func TestRunCheckURLHostIsTheTransportRule(t *testing.T) {
	var calls atomic.Int64
	api := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			calls.Add(1)
		}
	}))
	defer api.Close()
	for _, tc := range []struct {
		allowed, url string
		want         diagnose.Status
	}{
		{"api.example.com", "https://api.example.com./v1", diagnose.Fail},
		{"127.0.0.1.", api.URL + "/v1", diagnose.Fail},
		{"127.0.0.1", api.URL + "/v1", diagnose.OK},
	} {
		env := vars{"TOKENMGR_ACCESS_TOKEN": "static-secret-token", "TOKENMGR_ALLOWED_HOSTS": tc.allowed, "TOKENMGR_CHECK_URL": tc.url}
		r := diagnose.Run(context.Background(), diagnose.Options{Lookup: env.lookup, Timeout: 2 * time.Second})
		c := check(t, r, "check URL")
		assert.Equal(t, tc.want, c.Status, "%s with %s: %v", tc.url, tc.allowed, c)
		if tc.want == diagnose.Fail {
			assert.Contains(t, c.Message, "not in TOKENMGR_ALLOWED_HOSTS")
			assert.Contains(t, c.Message, "not sent")
		}
		noSecret(t, r, "static-secret-token")
	}
	assert.Equal(t, int64(1), calls.Load(), "the token went only where it was allowed")
}

func TestRunStoreDirectoryCannotBeCreated(t *testing.T) {
	dir := t.TempDir()
	blocker := dir + "/not-a-dir"
	require.NoError(t, writeFile(blocker))
	env := vars{"TOKENMGR_ACCESS_TOKEN": "static-secret-token", "TOKENMGR_STORE": "file",
		"TOKENMGR_STORE_PATH": blocker + "/sub/credentials.enc", "TOKENMGR_STORE_PASSPHRASE": "pass-phrase-1"}
	r := diagnose.Run(context.Background(), diagnose.Options{Lookup: env.lookup, Offline: true})
	c := check(t, r, "store")
	assert.Equal(t, diagnose.Fail, c.Status, "%v", c)
	assert.Contains(t, c.Message, "not a directory")
	assert.Contains(t, c.Hint, "TOKENMGR_STORE_PATH")
	noSecret(t, r, "static-secret-token", "pass-phrase-1")

	// Opening reads nothing there (no such file), so only trying tells.
	require.NoError(t, os.Symlink(dir+"/nowhere", dir+"/link"))
	env["TOKENMGR_STORE_PATH"] = dir + "/link/sub/credentials.enc"
	r = diagnose.Run(context.Background(), diagnose.Options{Lookup: env.lookup, Offline: true})
	c = check(t, r, "store")
	assert.Equal(t, diagnose.Fail, c.Status, "%v", c)
	assert.Contains(t, c.Message, "cannot be created")
	assert.Contains(t, c.Hint, "TOKENMGR_STORE_PATH")

	env["TOKENMGR_STORE_PATH"] = dir + "/new/deeper/credentials.enc"
	r = diagnose.Run(context.Background(), diagnose.Options{Lookup: env.lookup, Offline: true})
	assert.Equal(t, diagnose.OK, check(t, r, "store").Status, "%v", r.Checks)
	assert.NoDirExists(t, dir+"/new", "doctor created the directory")
}

func TestExplainNamesTheVariable(t *testing.T) {
	s := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer s.Close()
	env := vars{"TOKENMGR_TOKEN_URL": s.URL + "/oauth/tokn", "TOKENMGR_CLIENT_ID": s.ClientID, "TOKENMGR_CLIENT_SECRET": s.ClientSecret, "TOKENMGR_STORE": "memory"}
	s.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/token" {
			http.NotFound(w, r)
			return true
		}
		return false
	})
	r := diagnose.Run(context.Background(), diagnose.Options{Lookup: env.lookup, Timeout: 5 * time.Second})
	c := check(t, r, "credentials")
	assert.Equal(t, diagnose.Fail, c.Status)
	assert.Contains(t, c.Message, "404")
	assert.Contains(t, c.Hint, "TOKENMGR_TOKEN_URL ("+s.URL+"/oauth/tokn)")
	assert.True(t, strings.Contains(c.Hint, "no token endpoint"), c.Hint)
}

func writeFile(path string) error { return os.WriteFile(path, []byte("x"), 0o600) }

func TestExplainUntrustedCertificate(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	env := vars{"TOKENMGR_TOKEN_URL": srv.URL + "/token", "TOKENMGR_CLIENT_ID": "c", "TOKENMGR_CLIENT_SECRET": "a-secret-1", "TOKENMGR_STORE": "memory"}
	r := diagnose.Run(context.Background(), diagnose.Options{Lookup: env.lookup, Timeout: 5 * time.Second})
	c := check(t, r, "credentials")
	assert.Equal(t, diagnose.Fail, c.Status)
	assert.Contains(t, c.Hint, "does not trust the TLS certificate")
	assert.NotContains(t, c.Message, "attempts", "a certificate error is not retried")
	noSecret(t, r, "a-secret-1")
}

// Nothing listening at the token URL's port is reported after a second
// attempt, not retried for the whole step (10s), with the hint that names
// the host and port to check.
func TestExplainRefusedConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tokenURL := "http://" + ln.Addr().String() + "/token"
	require.NoError(t, ln.Close())
	env := vars{"TOKENMGR_TOKEN_URL": tokenURL, "TOKENMGR_CLIENT_ID": "c", "TOKENMGR_CLIENT_SECRET": "a-secret-1", "TOKENMGR_STORE": "memory"}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second) // under the step's 10s
	defer cancel()
	r := diagnose.Run(ctx, diagnose.Options{Lookup: env.lookup, Timeout: 30 * time.Second})
	require.NoError(t, ctx.Err(), "the refused connection was retried until the deadline: %v", r.Checks)
	c := check(t, r, "credentials")
	assert.Equal(t, diagnose.Fail, c.Status)
	assert.Contains(t, c.Message, "connection refused")
	assert.Contains(t, c.Message, "(after 2 attempts)")
	assert.Contains(t, c.Hint, "nothing listens there: check the host and port of TOKENMGR_TOKEN_URL ("+tokenURL+")")
	noSecret(t, r, "a-secret-1")
}

// With another variable bad, TOKENMGR_ALLOWED_HOSTS still keeps the token
// from hosts it does not name, and a bad list keeps it from all.
func TestRunAllowedHostsWithBadConfig(t *testing.T) {
	for _, tc := range []struct{ allowed, want string }{
		{"api.example.com", "other.example.com is not in TOKENMGR_ALLOWED_HOSTS"},
		{"api.example.com bad/entry", `"bad/entry"`},
	} {
		env := vars{"TOKENMGR_ACCESS_TOKEN": "static-secret-token", "TOKENMGR_STORE": "bogus",
			"TOKENMGR_ALLOWED_HOSTS": tc.allowed, "TOKENMGR_CHECK_URL": "https://other.example.com/v1"}
		r := diagnose.Run(context.Background(), diagnose.Options{Lookup: env.lookup, Offline: true})
		c := check(t, r, "check URL")
		assert.Equal(t, diagnose.Fail, c.Status, "%v", c)
		assert.Contains(t, c.Message, tc.want)
		assert.Contains(t, c.Message, "not sent")
	}
}
