package main

// tokenmgr token: what it prints (the token alone, or --json, a header,
// an ExecCredential), refreshing a stored token, one fetch for many
// processes, static tokens, and the one-line errors that say what to fix.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

func TestE2ETokenPrintsTokenAlone(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	env := fileStoreVars(t).with(oauthVars(s).flat()...)

	r := exe(t, sec, env, "token")
	wantCode(t, r, 0)
	tok := strings.TrimSuffix(r.stdout, "\n")
	if r.stdout != tok+"\n" || strings.ContainsAny(tok, "\n \t") || tok == "" {
		t.Fatalf("stdout is not the token and a newline: %q", r.stdout)
	}
	if r.stderr != "" {
		t.Errorf("stderr not empty: %q", r.stderr)
	}
	if !s.Valid(tok) {
		t.Fatalf("printed token is not one the server issued")
	}
	// The second run takes it from the store.
	r2 := exe(t, sec, env, "token")
	wantCode(t, r2, 0)
	if r2.stdout != r.stdout || s.Issued.Load() != 1 {
		t.Fatalf("second run: %q (issued %d); want the stored token", r2.stdout, s.Issued.Load())
	}
}

func TestE2ETokenFailsWithOneLine(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	wrong := "wrong-secret-" + randText(t)
	sec.add(wrong)
	for _, tc := range []struct {
		name string
		env  vars
		want string
	}{
		{"invalid_client", oauthVars(s).with("TOKENMGR_CLIENT_SECRET", wrong, "TOKENMGR_STORE", "memory"), "invalid_client"},
		{"no configuration", vars{}, "TOKENMGR_TOKEN_URL"},
		{"bad store", oauthVars(s).with("TOKENMGR_STORE", "floppy"), "TOKENMGR_STORE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := exe(t, sec, tc.env, "token")
			wantCode(t, r, 1)
			if r.stdout != "" {
				t.Errorf("stdout: %q", r.stdout)
			}
			if strings.Count(r.stderr, "\n") != 1 || !strings.HasSuffix(r.stderr, "\n") || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr should be one line naming %s: %q", tc.want, r.stderr)
			}
		})
	}
}

func TestE2ETokenRefreshesExpiredStoredToken(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{Lifetime: time.Second})
	env := fileStoreVars(t).with(oauthVars(s).flat()...)
	r := exe(t, sec, env, "token")
	wantCode(t, r, 0)
	first := strings.TrimSpace(r.stdout)
	time.Sleep(1100 * time.Millisecond)
	if s.Valid(first) {
		t.Fatal("the first token should have expired")
	}
	r = exe(t, sec, env, "status")
	wantCode(t, r, 0)
	assert.Contains(t, r.stdout, "EXPIRED", "status of an expired token:\n%s", r)
	r = exe(t, sec, env, "token")
	wantCode(t, r, 0)
	if second := strings.TrimSpace(r.stdout); second == first || !s.Valid(second) {
		t.Fatalf("token after expiry: got the old or an invalid token")
	}
}

func TestE2EConcurrentProcessesFetchOnce(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	env := fileStoreVars(t).with(oauthVars(s).flat()...)
	const n = 5
	out := make(chan result, n)
	for range n {
		go func() { out <- exe(t, sec, env, "token") }()
	}
	var tok string
	for range n {
		r := <-out
		wantCode(t, r, 0)
		if tok != "" && r.stdout != tok {
			t.Errorf("processes printed different tokens")
		}
		tok = r.stdout
	}
	if got := s.Issued.Load(); got != 1 {
		t.Errorf("%d processes sharing a store made %d token requests, want 1", n, got)
	}
}

// A changed static TOKENMGR_ACCESS_TOKEN takes effect: a static token is
// never kept in the store.
func TestStaticTokenChangeTakesEffect(t *testing.T) {
	env := fileStoreVars(t)
	if r := runIn(env.with("TOKENMGR_ACCESS_TOKEN", "static-AAAA"), "token"); r.stdout != "static-AAAA\n" {
		t.Fatalf("first run: %q %q", r.stdout, r.stderr)
	}
	if r := runIn(env.with("TOKENMGR_ACCESS_TOKEN", "static-BBBB"), "token"); r.stdout != "static-BBBB\n" {
		t.Errorf("second run printed %q, want the new static token", r.stdout)
	}
}

// With the default auth style, a scope the client may not have is
// reported as invalid_scope by token and doctor, and a wrong secret as the
// server's complaint about the secret, not about the auth method.
func TestE2EAutoAuthStyleReportsTheCause(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	basicOnly(s, "read")
	env := oauthVars(s).with("TOKENMGR_STORE", "memory", "TOKENMGR_SCOPES", "read admin")

	r := exe(t, sec, env, "token")
	wantCode(t, r, 1)
	for _, w := range []string{"invalid_scope", "may not ask for admin", "TOKENMGR_SCOPES"} {
		assert.Contains(t, r.stderr, w, "token: stderr lacks %q:\n%s", w, r)
	}
	r = exe(t, sec, env, "doctor")
	wantCheck(t, r, "credentials", "FAIL", "invalid_scope", "may not ask for admin", "TOKENMGR_SCOPES (requested: read admin)")

	wrong := "wrong-secret-" + randText(t)
	sec.add(wrong)
	r = exe(t, sec, env.with("TOKENMGR_SCOPES", "read", "TOKENMGR_CLIENT_SECRET", wrong), "doctor")
	wantCheck(t, r, "credentials", "FAIL", "invalid_client", "the client secret is wrong", "TOKENMGR_CLIENT_SECRET")
	assert.NotContains(t, r.stdout, "client_secret_post", "doctor reports the auth-method complaint of the second attempt:\n%s", r)
	wantCode(t, exe(t, sec, env.with("TOKENMGR_SCOPES", "read"), "token"), 0)
}

// TOKENMGR_STORE=keyring where no Secret Service answers: an error, not a
// token that is silently not kept.
func TestE2EExplicitStoreThatCannotBeUsedFails(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	env := oauthVars(s).with("TOKENMGR_STORE", "keyring") // exe sets no D-Bus session
	r := exe(t, sec, env, "token", "--timeout", "20s")
	wantCode(t, r, 1)
	if r.stdout != "" || !strings.Contains(r.stderr, "TOKENMGR_STORE=keyring cannot be used") {
		t.Fatalf("want no token and the store named:\n%s", r)
	}
	// Left to auto, the same is a warning at most, and the token is printed.
	dir := t.TempDir()
	r = exe(t, sec, env.with("TOKENMGR_STORE", "auto", "TOKENMGR_STORE_PATH", dir+"/c.enc", "TOKENMGR_STORE_PASSPHRASE", passphrase), "token")
	wantCode(t, r, 0)
}

// A host name that does not exist fails at once, saying so; a refused
// port is retried until --timeout and the message counts the attempts.
func TestE2EUnreachableTokenEndpoint(t *testing.T) {
	t.Parallel()
	sec := &secrets{}
	base := vars{"TOKENMGR_CLIENT_ID": "c", "TOKENMGR_CLIENT_SECRET": "never-shown-secret", "TOKENMGR_STORE": "memory"}
	sec.add("never-shown-secret")
	start := time.Now()
	r := exe(t, sec, base.with("TOKENMGR_TOKEN_URL", "https://no-such-host.invalid/token"), "token", "--timeout", "30s")
	took := time.Since(start)
	wantCode(t, r, 1)
	for _, w := range []string{"no such host", "TOKENMGR_TOKEN_URL (https://no-such-host.invalid/token)", "typo"} {
		assert.Contains(t, r.stderr, w, "stderr lacks %q:\n%s", w, r)
	}
	if strings.Contains(r.stderr, "attempts") || took > 15*time.Second {
		t.Errorf("no such host was retried (%s):\n%s", took, r)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	r = exe(t, sec, base.with("TOKENMGR_TOKEN_URL", "http://"+addr+"/token"), "token", "--timeout", "2s")
	wantCode(t, r, 1)
	if !regexp.MustCompile(`connection refused \(after [2-9][0-9]* attempts\)`).MatchString(r.stderr) || !strings.Contains(r.stderr, "nothing listens") {
		t.Errorf("want the attempts counted and a hint:\n%s", r)
	}
}

// A static token that is expired or not a JWT is printed with a warning
// on stderr, and doctor does not promise it a refresh.
func TestE2EStaticTokenWarnings(t *testing.T) {
	t.Parallel()
	expired := seg(`{"alg":"ES256","typ":"JWT"}`) + "." + seg(fmt.Sprintf(`{"exp":%d}`, time.Now().Add(-time.Hour).Unix())) + ".c2lnbmF0dXJl"
	for _, tc := range []struct{ tok, want string }{
		{"opaque-static-token", "not a JWT, so its expiry is unknown"},
		{expired, "TOKENMGR_ACCESS_TOKEN expired 1h ago"},
	} {
		sec := &secrets{}
		sec.add(tc.tok)
		env := vars{"TOKENMGR_ACCESS_TOKEN": tc.tok}
		r := exe(t, sec, env, "token")
		wantCode(t, r, 0)
		if r.stdout != tc.tok+"\n" {
			t.Errorf("stdout %q, want the token", r.stdout)
		}
		if !strings.Contains(r.stderr, "warning: ") || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "never refreshed") {
			t.Errorf("stderr lacks the warning %q:\n%s", tc.want, r)
		}
		r = exe(t, sec, env, "doctor", "--offline")
		if strings.Contains(r.stdout, "refreshes it") || strings.Contains(r.stdout, "fetches a new one") {
			t.Errorf("doctor promises a static token a refresh:\n%s", r)
		}
		assert.Contains(t, r.stdout, "never refreshed", "doctor does not say a static token is never refreshed:\n%s", r)
	}
	// A valid JWT: no warning.
	good := seg(`{"alg":"ES256","typ":"JWT"}`) + "." + seg(fmt.Sprintf(`{"exp":%d}`, time.Now().Add(time.Hour).Unix())) + ".c2lnbmF0dXJl"
	if r := exe(t, nil, vars{"TOKENMGR_ACCESS_TOKEN": good}, "token"); r.code != 0 || r.stderr != "" {
		t.Errorf("a valid static JWT: %s", r)
	}
}

// A 404 from the token URL names the URL and the variable; a wrong store
// passphrase says how to start afresh.
func TestE2EErrorsSayWhatToFix(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	s.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/oauth2/tokn" {
			http.NotFound(w, r)
			return true
		}
		return false
	})
	env := oauthVars(s).with("TOKENMGR_TOKEN_URL", s.URL+"/oauth2/tokn", "TOKENMGR_STORE", "memory")
	r := exe(t, sec, env, "token")
	wantCode(t, r, 1)
	for _, w := range []string{"404", "TOKENMGR_TOKEN_URL (" + s.URL + "/oauth2/tokn)", "no token endpoint"} {
		assert.Contains(t, r.stderr, w, "404: stderr lacks %q:\n%s", w, r)
	}
	file := fileStoreVars(t)
	wantCode(t, exe(t, sec, oauthVars(s).with(file.flat()...), "token"), 0)
	wrong := file.with("TOKENMGR_STORE_PASSPHRASE", "not the passphrase 1")
	sec.add("not the passphrase 1")
	r = exe(t, sec, oauthVars(s).with(wrong.flat()...), "token")
	wantCode(t, r, 1)
	assert.Contains(t, r.stderr, "logout --reset", "wrong passphrase: no way out offered:\n%s", r)
}

// token --json, --format header, --format exec-credential and
// --force-refresh, as oauth2l, gcloud and kubelogin users expect.
func TestE2ETokenFormats(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	env := fileStoreVars(t).with(oauthVars(s).flat()...)

	r := exe(t, sec, env, "token", "--json")
	wantCode(t, r, 0)
	var js struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		Expiry      string `json:"expiry"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil {
		t.Fatalf("--json: %v\n%s", err, r)
	}
	exp, err := time.Parse(time.RFC3339, js.Expiry)
	if !s.Valid(js.AccessToken) || js.TokenType != "Bearer" || err != nil || time.Until(exp) < 59*time.Minute || js.ExpiresIn < 3500 {
		t.Errorf("--json: %+v (%v)", js, err)
	}

	r = exe(t, sec, env, "token", "--format", "header")
	wantCode(t, r, 0)
	if r.stdout != "Authorization: Bearer "+js.AccessToken+"\n" {
		t.Errorf("--format header: %q", r.stdout)
	}

	r = exe(t, sec, env, "token", "--format", "exec-credential")
	wantCode(t, r, 0)
	var ec struct {
		Kind, APIVersion string
		Status           struct {
			Token               string `json:"token"`
			ExpirationTimestamp string `json:"expirationTimestamp"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &ec); err != nil {
		t.Fatalf("exec-credential: %v\n%s", err, r)
	}
	ecExp, err := time.Parse(time.RFC3339, ec.Status.ExpirationTimestamp)
	if ec.Kind != "ExecCredential" || ec.APIVersion != "client.authentication.k8s.io/v1" || ec.Status.Token != js.AccessToken || err != nil ||
		!ecExp.Before(exp) || time.Until(ecExp) < 50*time.Minute {
		t.Errorf("exec-credential: %+v (%v); want the stored token, expiring before %s", ec, err, exp)
	}
	if s.Issued.Load() != 1 {
		t.Errorf("issued %d tokens; the formats should share the stored one", s.Issued.Load())
	}

	r = exe(t, sec, env, "token", "--force-refresh")
	wantCode(t, r, 0)
	fresh := strings.TrimSpace(r.stdout)
	if fresh == js.AccessToken || !s.Valid(fresh) || s.Issued.Load() != 2 {
		t.Errorf("--force-refresh printed %.6s… (issued %d), want a new token", fresh, s.Issued.Load())
	}
	if r := exe(t, sec, env, "token"); strings.TrimSpace(r.stdout) != fresh {
		t.Errorf("the forced token was not saved: next run printed another")
	}

	if r := exe(t, sec, env, "token", "--format", "yaml"); r.code != exitUsage {
		t.Errorf("--format yaml: %s", r)
	}
	if r := exe(t, sec, vars{"TOKENMGR_ACCESS_TOKEN": "static-tok"}, "token", "--force-refresh"); r.code != 1 || !strings.Contains(r.stderr, "cannot be refreshed") {
		t.Errorf("--force-refresh of a static token: %s", r)
	}
}
