package main

// No command prints a secret: not in its output, not echoed back by an
// endpoint in any encoding.

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// TestE2ENoSecretInAnyOutput runs every command, in text and JSON, in
// success and failure, with every secret variable set, and checks (in exe)
// that no secret shows anywhere but on the stdout of "token".
func TestE2ENoSecretInAnyOutput(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{Rotate: true})
	seed := s.IssueRefreshToken()
	static := "static-" + randText(t)
	sec.add(seed, static)
	env := fileStoreVars(t).with(oauthVars(s).flat()...).with(
		"TOKENMGR_REFRESH_TOKEN", seed, "TOKENMGR_CHECK_URL", s.URL+"/api")
	tokens := map[string]bool{}
	sec.watch(func() []string {
		var out []string
		for k := range tokens {
			out = append(out, k)
		}
		return out
	})
	all := [][]string{{"status"}, {"status", "--json"}, {"doctor"}, {"doctor", "--json"}, {"doctor", "--offline"}, {"version"}}
	r := exe(t, sec, env, "token")
	wantCode(t, r, 0)
	tokens[strings.TrimSpace(r.stdout)] = true
	for _, args := range all {
		exe(t, sec, env, args...)
	}
	// Failures: a wrong client secret with a dead refresh token, a bad
	// variable, a static token set together with the token URL (an
	// error), and a static token alone.
	s.Revoke(strings.TrimSpace(r.stdout))
	broken := env.with("TOKENMGR_CLIENT_SECRET", "x"+s.ClientSecret, "TOKENMGR_STORE", "memory")
	for _, args := range append(all, []string{"token"}, []string{"token", "--json"}, []string{"token", "--format", "exec-credential"}, []string{"token", "--force-refresh"}) {
		exe(t, sec, broken, args...)
		exe(t, sec, broken.with("TOKENMGR_AUTH_STYLE", "sideways"), args...)
		exe(t, sec, env.with("TOKENMGR_ACCESS_TOKEN", static), args...)
		exe(t, sec, vars{"TOKENMGR_ACCESS_TOKEN": static}, args...)
	}
	exe(t, sec, env, "logout")
	exe(t, sec, env, "status")
	// A forgotten passphrase, and the way to start afresh.
	forgotten := "forgotten-" + randText(t)
	sec.add(forgotten)
	wantCode(t, exe(t, sec, env.with("TOKENMGR_STORE_PASSPHRASE", forgotten), "token"), 1)
	wantCode(t, exe(t, sec, env.with("TOKENMGR_STORE_PASSPHRASE", forgotten), "logout"), 1)
	wantCode(t, exe(t, sec, env.with("TOKENMGR_STORE_PASSPHRASE", forgotten), "logout", "--reset"), 0)
}

// A token endpoint that quotes the whole request back (Authorization
// header and form body) leaves the client secret URL-encoded and base64-
// encoded in its answer: neither token nor doctor may print any encoding
// of it (issue 10 item 5).
func TestEchoedSecretRedactedInEveryEncoding(t *testing.T) {
	const id, secret = "client id+1", "CLIENT+SECRET/with spaces&=?%x"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		echo := "auth=" + r.Header.Get("Authorization") + " body=" + string(body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client", "error_description": echo})
	}))
	defer srv.Close()
	encodings := []string{secret, url.QueryEscape(secret), url.PathEscape(secret)}
	for _, pair := range []string{id + ":" + secret, url.QueryEscape(id) + ":" + url.QueryEscape(secret)} {
		encodings = append(encodings, base64.StdEncoding.EncodeToString([]byte(pair)))
	}
	env := vars{"TOKENMGR_STORE": "memory", "TOKENMGR_TOKEN_URL": srv.URL + "/token",
		"TOKENMGR_CLIENT_ID": id, "TOKENMGR_CLIENT_SECRET": secret}
	for _, style := range []string{"header", "params", "auto"} {
		for _, cmd := range []string{"token", "doctor"} {
			r := runIn(env.with("TOKENMGR_AUTH_STYLE", style), cmd, "--timeout", "5s")
			require.NotEqual(t, 0, r.code, "%s with style %s passed against a server rejecting the client:\n%s", cmd, style, r)
			for _, enc := range encodings {
				if strings.Contains(r.stdout+r.stderr, enc) {
					assert.Fail(t, "the secret is shown", "%s (auth style %s) shows the secret as %q:\n%s", cmd, style, enc, r)
				}
			}
		}
	}
}
