package main

// End-to-end tests of the CLI as a newcomer meets it (issue 11 §6), each
// against the real test OAuth server, each run checked for secrets.

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// basicOnly makes s answer as a server whose client is registered for
// client_secret_basic (ORY Hydra, Keycloak): credentials in the form body
// are refused with invalid_client naming the methods, and a scope other
// than allowed is refused with invalid_scope.
func basicOnly(s *tokenmgrtest.Server, allowed string) {
	s.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/token" {
			return false
		}
		r.ParseForm()
		id, secret, basic := r.BasicAuth()
		switch {
		case !basic:
			oauthErr(w, http.StatusUnauthorized, "invalid_client", "Client authentication failed (e.g., unknown client, no client authentication included, or unsupported authentication method). The OAuth 2.0 Client supports client authentication method 'client_secret_basic', but method 'client_secret_post' was requested.")
			return true
		case id != s.ClientID || secret != s.ClientSecret:
			oauthErr(w, http.StatusUnauthorized, "invalid_client", "the client secret is wrong")
			return true
		}
		for _, sc := range strings.Fields(r.PostForm.Get("scope")) {
			if sc != allowed {
				oauthErr(w, http.StatusBadRequest, "invalid_scope", "the client may not ask for "+sc)
				return true
			}
		}
		return false
	})
}

func oauthErr(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write([]byte(`{"error":"` + code + `","error_description":"` + desc + `"}`))
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
		if !strings.Contains(r.stderr, w) {
			t.Errorf("token: stderr lacks %q:\n%s", w, r)
		}
	}
	r = exe(t, sec, env, "doctor")
	wantCheck(t, r, "credentials", "FAIL", "invalid_scope", "may not ask for admin", "TOKENMGR_SCOPES (requested: read admin)")

	wrong := "wrong-secret-" + randText(t)
	sec.add(wrong)
	r = exe(t, sec, env.with("TOKENMGR_SCOPES", "read", "TOKENMGR_CLIENT_SECRET", wrong), "doctor")
	wantCheck(t, r, "credentials", "FAIL", "invalid_client", "the client secret is wrong", "TOKENMGR_CLIENT_SECRET")
	if strings.Contains(r.stdout, "client_secret_post") {
		t.Errorf("doctor reports the auth-method complaint of the second attempt:\n%s", r)
	}
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
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r)
		}
	}
	if strings.Contains(r.stderr, "attempts") || took > 15*time.Second {
		t.Errorf("no such host was retried (%s):\n%s", took, r)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
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
		if !strings.Contains(r.stdout, "never refreshed") {
			t.Errorf("doctor does not say a static token is never refreshed:\n%s", r)
		}
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
		if !strings.Contains(r.stderr, w) {
			t.Errorf("404: stderr lacks %q:\n%s", w, r)
		}
	}
	file := fileStoreVars(t)
	wantCode(t, exe(t, sec, oauthVars(s).with(file.flat()...), "token"), 0)
	wrong := file.with("TOKENMGR_STORE_PASSPHRASE", "not the passphrase 1")
	sec.add("not the passphrase 1")
	r = exe(t, sec, oauthVars(s).with(wrong.flat()...), "token")
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "logout --reset") {
		t.Errorf("wrong passphrase: no way out offered:\n%s", r)
	}
}

// A store that cannot be opened (forgotten passphrase) can be reset by
// logout --reset, which says what it deleted; a file that is not a
// tokenmgr store is never deleted.
func TestE2ELogoutReset(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	file := fileStoreVars(t)
	wantCode(t, exe(t, sec, oauthVars(s).with(file.flat()...), "token"), 0)
	wrong := file.with("TOKENMGR_STORE_PASSPHRASE", "a forgotten passphrase")
	sec.add("a forgotten passphrase")

	r := exe(t, sec, wrong, "logout")
	wantCode(t, r, 1)
	if !strings.Contains(r.stderr, "logout --reset") {
		t.Errorf("logout of an unopenable store offers no way out:\n%s", r)
	}
	r = exe(t, sec, wrong, "logout", "--reset")
	wantCode(t, r, 0)
	path := file["TOKENMGR_STORE_PATH"]
	if !strings.Contains(r.stdout, "deleted the store file "+path) || !strings.Contains(r.stdout, "every credential") {
		t.Errorf("reset does not say what it deleted:\n%s", r)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("store file still there: %v", err)
	}
	// Afresh with the new passphrase.
	wantCode(t, exe(t, sec, oauthVars(s).with(wrong.flat()...), "token"), 0)
	if s.Issued.Load() != 2 {
		t.Errorf("issued %d tokens, want 2", s.Issued.Load())
	}

	// Not a tokenmgr file: refused, kept.
	other := filepath.Join(t.TempDir(), "notes.txt")
	if err := os.WriteFile(other, []byte("my notes, not a store\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r = exe(t, sec, wrong.with("TOKENMGR_STORE_PATH", other), "logout", "--reset")
	wantCode(t, r, 1)
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("logout --reset deleted a file that is not a store: %v", err)
	}
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

// doctor does not call a store OK whose directory cannot be created: the
// token request succeeds, but nothing could be kept.
func TestE2EDoctorStoreDirectory(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "link")); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	env := oauthVars(s).with("TOKENMGR_STORE", "file", "TOKENMGR_STORE_PASSPHRASE", passphrase,
		"TOKENMGR_STORE_PATH", filepath.Join(dir, "link", "tokens", "credentials.enc"))
	r := exe(t, sec, env, "doctor")
	wantCode(t, r, 1)
	wantCheck(t, r, "store", "FAIL", "nothing can be saved", "cannot be created", "TOKENMGR_STORE_PATH")
	// And token, with that store chosen by name, fails rather than
	// printing a token it cannot keep.
	r = exe(t, sec, env, "token")
	wantCode(t, r, 1)
	if r.stdout != "" {
		t.Errorf("token printed a token it could not keep:\n%s", r)
	}
}
