package main

// tokenmgr token: what it prints (the token alone, or --json, a header,
// an ExecCredential), refreshing a stored token, one fetch for many
// processes, static tokens, and the one-line errors that say what to fix.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
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
	require.Equal(t, tok+"\n", r.stdout, "stdout is the token and a newline")
	require.NotEmpty(t, tok)
	require.False(t, strings.ContainsAny(tok, "\n \t"), "stdout is the token and a newline: %q", r.stdout)
	assert.Empty(t, r.stderr)
	require.True(t, s.Valid(tok), "the printed token is one the server issued")
	// The second run takes it from the store.
	r2 := exe(t, sec, env, "token")
	wantCode(t, r2, 0)
	require.Equal(t, r.stdout, r2.stdout, "second run: the stored token")
	require.EqualValues(t, 1, s.Issued.Load(), "second run: the stored token")
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
			assert.Empty(t, r.stdout)
			assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "stderr is one line: %q", r.stderr)
			assert.True(t, strings.HasSuffix(r.stderr, "\n"), "stderr is one line: %q", r.stderr)
			assert.Contains(t, r.stderr, tc.want)
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
	require.False(t, s.Valid(first), "the first token has expired")
	r = exe(t, sec, env, "status")
	wantCode(t, r, 0)
	assert.Contains(t, r.stdout, "EXPIRED", "status of an expired token:\n%s", r)
	r = exe(t, sec, env, "token")
	wantCode(t, r, 0)
	second := strings.TrimSpace(r.stdout)
	require.NotEqual(t, first, second, "token after expiry: a new one")
	require.True(t, s.Valid(second), "token after expiry: a valid one")
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
		if tok != "" {
			assert.Equal(t, tok, r.stdout, "processes print the same token")
		}
		tok = r.stdout
	}
	assert.EqualValues(t, 1, s.Issued.Load(), "token requests by %d processes sharing a store", n)
}

// A changed static TOKENMGR_ACCESS_TOKEN takes effect: a static token is
// never kept in the store.
func TestStaticTokenChangeTakesEffect(t *testing.T) {
	env := fileStoreVars(t)
	r := runIn(env.with("TOKENMGR_ACCESS_TOKEN", "static-AAAA"), "token")
	require.Equal(t, "static-AAAA\n", r.stdout, "first run: %s", r)
	r = runIn(env.with("TOKENMGR_ACCESS_TOKEN", "static-BBBB"), "token")
	assert.Equal(t, "static-BBBB\n", r.stdout, "second run: the new static token")
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
	require.Empty(t, r.stdout, "no token")
	require.Contains(t, r.stderr, "TOKENMGR_STORE=keyring cannot be used", "the store named")
	// Left to auto, the same is a warning at most, and the token is printed.
	dir := t.TempDir()
	r = exe(t, sec, env.with("TOKENMGR_STORE", "auto", "TOKENMGR_STORE_PATH", dir+"/c.enc", "TOKENMGR_STORE_PASSPHRASE", passphrase), "token")
	wantCode(t, r, 0)
}

// A host name that does not exist fails at once, saying so.
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
	assert.NotContains(t, r.stderr, "attempts", "no such host is not retried")
	assert.LessOrEqual(t, took, 15*time.Second, "no such host is not retried:\n%s", r)
}

// An https:// token URL at a plain-http server fails at once, in one line
// saying the server speaks plain http; before, 14 attempts over 26 s with
// "check the network and any proxy". The reverse, http:// at a TLS port,
// shows the server's answer and says to use https.
func TestE2ETokenURLSchemeMismatch(t *testing.T) {
	t.Parallel()
	sec := &secrets{}
	sec.add("never-shown-secret")
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(http.NotFoundHandler())
	defer tlsSrv.Close()
	env := vars{"TOKENMGR_CLIENT_ID": "c", "TOKENMGR_CLIENT_SECRET": "never-shown-secret", "TOKENMGR_STORE": "memory"}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := exeCtx(ctx, t, sec, env.with("TOKENMGR_TOKEN_URL", "https://"+plain.Listener.Addr().String()+"/token"), "token", "--timeout", "60s")
	require.NoError(t, ctx.Err(), "still retrying after 20s (--timeout 60s):\n%s", r)
	wantCode(t, r, 1)
	assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line, no retries:\n%s", r)
	assert.Contains(t, r.stderr, "speaks plain http, not https")
	assert.NotContains(t, r.stderr, "attempts")

	r = exe(t, sec, env.with("TOKENMGR_TOKEN_URL", "http://"+tlsSrv.Listener.Addr().String()+"/token"), "token")
	wantCode(t, r, 1)
	assert.Contains(t, r.stderr, "answered 400: Client sent an HTTP request to an HTTPS server")
	assert.Contains(t, r.stderr, "use an https:// URL")
}

// A refused connection (nothing listens at TOKENMGR_TOKEN_URL's port)
// fails after 4 attempts, long before --timeout; each failed attempt that
// is retried says so on stderr, and the error counts the attempts and
// names the URL and the variable.
func TestE2ETokenRefusedConnectionFailsFast(t *testing.T) {
	t.Parallel()
	sec := &secrets{}
	sec.add("never-shown-secret")
	tokenURL := "http://" + closedPort(t) + "/token"
	env := vars{"TOKENMGR_TOKEN_URL": tokenURL, "TOKENMGR_CLIENT_ID": "c", "TOKENMGR_CLIENT_SECRET": "never-shown-secret", "TOKENMGR_STORE": "memory"}
	// A bound well below --timeout: a command that retries until then is
	// killed, and the test fails instead of waiting a minute.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := exeCtx(ctx, t, sec, env, "token", "--timeout", "60s")
	require.NoError(t, ctx.Err(), "still retrying after 20s (--timeout 60s):\n%s", r)
	wantCode(t, r, 1)
	assert.Empty(t, r.stdout)
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	require.Len(t, lines, 4, "a line for each of the 3 attempts retried, then the error:\n%s", r)
	for i, l := range lines[:3] {
		assert.True(t, strings.HasPrefix(l, fmt.Sprintf("tokenmgr token: attempt %d failed at TOKENMGR_TOKEN_URL (%s): ", i+1, tokenURL)), "line %d: %q", i+1, l)
		assert.Contains(t, l, "connection refused", "line %d", i+1)
		assert.Regexp(t, `; retrying in [0-9.]+m?s$`, l, "line %d", i+1)
	}
	for _, w := range []string{"connection refused (after 4 attempts)", "TOKENMGR_TOKEN_URL (" + tokenURL + ")", "nothing listens"} {
		assert.Contains(t, lines[3], w, "the error line")
	}
}

// An endpoint that answers 503 is retried until it answers; each failed
// attempt says so on stderr, and the token is printed as usual.
func TestE2ETokenReportsEachRetry(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	var failures atomic.Int32
	failures.Store(2)
	s.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/token" || failures.Add(-1) < 0 {
			return false
		}
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return true
	})
	// One request per attempt: auto-detection would try the other auth
	// style on a failure.
	env := oauthVars(s).with("TOKENMGR_STORE", "memory", "TOKENMGR_AUTH_STYLE", "header")
	r := exe(t, sec, env, "token", "--timeout", "60s")
	wantCode(t, r, 0)
	assert.True(t, s.Valid(strings.TrimSpace(r.stdout)), "the token is printed:\n%s", r)
	lines := strings.Split(strings.TrimSuffix(r.stderr, "\n"), "\n")
	require.Len(t, lines, 2, "a line for each failed attempt:\n%s", r)
	for i, l := range lines {
		assert.True(t, strings.HasPrefix(l, fmt.Sprintf("tokenmgr token: attempt %d failed at TOKENMGR_TOKEN_URL (%s): token endpoint answered 503", i+1, s.TokenURL())), "line %d: %q", i+1, l)
		assert.Regexp(t, `; retrying in [0-9.]+m?s$`, l, "line %d", i+1)
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
		assert.Equal(t, tc.tok+"\n", r.stdout, "the token")
		for _, w := range []string{"warning: ", tc.want, "never refreshed"} {
			assert.Contains(t, r.stderr, w, "the warning")
		}
		r = exe(t, sec, env, "doctor", "--offline")
		assert.NotContains(t, r.stdout, "refreshes it", "doctor promises a static token no refresh")
		assert.NotContains(t, r.stdout, "fetches a new one", "doctor promises a static token no refresh")
		assert.Contains(t, r.stdout, "never refreshed", "doctor does not say a static token is never refreshed:\n%s", r)
	}
	// A valid JWT: no warning.
	good := seg(`{"alg":"ES256","typ":"JWT"}`) + "." + seg(fmt.Sprintf(`{"exp":%d}`, time.Now().Add(time.Hour).Unix())) + ".c2lnbmF0dXJl"
	r := exe(t, nil, vars{"TOKENMGR_ACCESS_TOKEN": good}, "token")
	assert.Equal(t, 0, r.code, "a valid static JWT: %s", r)
	assert.Empty(t, r.stderr, "a valid static JWT: no warning")
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
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &js), "--json:\n%s", r)
	exp, err := time.Parse(time.RFC3339, js.Expiry)
	require.NoError(t, err, "--json expiry")
	assert.True(t, s.Valid(js.AccessToken), "--json: a valid token")
	assert.Equal(t, "Bearer", js.TokenType)
	assert.GreaterOrEqual(t, time.Until(exp), 59*time.Minute)
	assert.GreaterOrEqual(t, js.ExpiresIn, int64(3500))

	r = exe(t, sec, env, "token", "--format", "header")
	wantCode(t, r, 0)
	assert.Equal(t, "Authorization: Bearer "+js.AccessToken+"\n", r.stdout, "--format header")

	r = exe(t, sec, env, "token", "--format", "exec-credential")
	wantCode(t, r, 0)
	var ec struct {
		Kind, APIVersion string
		Status           struct {
			Token               string `json:"token"`
			ExpirationTimestamp string `json:"expirationTimestamp"`
		} `json:"status"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &ec), "exec-credential:\n%s", r)
	ecExp, err := time.Parse(time.RFC3339, ec.Status.ExpirationTimestamp)
	require.NoError(t, err, "exec-credential expirationTimestamp")
	assert.Equal(t, "ExecCredential", ec.Kind)
	assert.Equal(t, "client.authentication.k8s.io/v1", ec.APIVersion)
	assert.Equal(t, js.AccessToken, ec.Status.Token, "exec-credential: the stored token")
	assert.Equal(t, exp, ecExp, "exec-credential expires when the token does")
	assert.GreaterOrEqual(t, time.Until(ecExp), 50*time.Minute)
	assert.EqualValues(t, 1, s.Issued.Load(), "the formats share the stored token")

	r = exe(t, sec, env, "token", "--force-refresh")
	wantCode(t, r, 0)
	fresh := strings.TrimSpace(r.stdout)
	assert.NotEqual(t, js.AccessToken, fresh, "--force-refresh: a new token")
	assert.True(t, s.Valid(fresh), "--force-refresh: a valid token")
	assert.EqualValues(t, 2, s.Issued.Load(), "--force-refresh asks the endpoint")
	r = exe(t, sec, env, "token")
	assert.Equal(t, fresh, strings.TrimSpace(r.stdout), "the forced token is saved")

	r = exe(t, sec, env, "token", "--format", "yaml")
	assert.Equal(t, exitUsage, r.code, "--format yaml: %s", r)
	r = exe(t, sec, vars{"TOKENMGR_ACCESS_TOKEN": "static-tok"}, "token", "--force-refresh")
	assert.Equal(t, 1, r.code, "--force-refresh of a static token: %s", r)
	assert.Contains(t, r.stderr, "cannot be refreshed")
}

// With auto and no store at all (no Secret Service, no passphrase) the
// command fails before asking for a token, naming the ways out, as the
// README and the help say: it does not fall back to memory by itself,
// where a rotated refresh token would be lost at exit.
func TestE2EAutoWithNoStoreIsAnError(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	r := exe(t, sec, oauthVars(s), "token") // no DBUS_SESSION_BUS_ADDRESS, no passphrase
	wantCode(t, r, 1)
	assert.Empty(t, r.stdout)
	for _, w := range []string{"no credential store", "TOKENMGR_STORE_PASSPHRASE", "TOKENMGR_STORE=memory"} {
		assert.Contains(t, r.stderr, w, "%s", r)
	}
	assert.EqualValues(t, 0, s.Issued.Load(), "no token was asked for")
	wantCode(t, exe(t, sec, oauthVars(s).with("TOKENMGR_STORE", "memory"), "token"), 0)

	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	help := exe(t, nil, nil, "token", "--help")
	for what, doc := range map[string]string{"README": string(readme), "token --help": help.stdout + help.stderr} {
		doc = strings.Join(strings.Fields(doc), " ")
		assert.Contains(t, doc, "finding no store at all (no keyring answers", "%s does not say auto without a store is an error", what)
		assert.NotContains(t, doc, "with `auto`, or a Redis that does not answer, it is a warning", what)
	}
}
