package main

// tokenmgr doctor: the checks it prints, from a healthy setup to each
// misconfiguration (client secret, clock skew, token findings, signature,
// invalid_grant, check URL, store passphrase and directory, bad variables,
// allowed hosts), online and offline.

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/diagnose"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

func TestE2EDoctorHealthy(t *testing.T) {
	t.Parallel()
	s := newJWTIssuer(t, "good")
	sec := issuerSecrets(s)
	env := s.vars().with("TOKENMGR_STORE", "memory")
	r := exe(t, sec, env, "doctor")
	wantCode(t, r, 0)
	wantCheck(t, r, "configuration", "OK", "client credentials grant", `"jwt-client"`)
	wantCheck(t, r, "variables", "OK", "CLIENT_SECRET=(set)", "CLIENT_ID=jwt-client")
	wantCheck(t, r, "clock", "OK")
	wantCheck(t, r, "credentials", "OK", "Bearer")
	wantCheck(t, r, "token format", "OK", "fresh token", "JWT, alg ES256", "kid key-a", "sub service-42")
	wantCheck(t, r, "expiry", "OK", "valid for")
	wantCheck(t, r, "signature", "OK", "verifies with key key-a")
	wantCheck(t, r, "check URL", "SKIP")
	assert.Contains(t, r.stdout, "no check failed", "the summary")
	assert.NotContains(t, r.stdout, "\x1b[", "no colour on a pipe")

	// --json, and the key set named explicitly.
	r = exe(t, sec, env.with("TOKENMGR_JWKS_URL", s.URL+"/jwks"), "doctor", "--json")
	wantCode(t, r, 0)
	d := doctorJSONOf(t, r)
	assert.True(t, d.OK, "doctor --json: %+v", d)
	assert.Zero(t, d.Failed, "doctor --json: %+v", d)
	for _, c := range d.Checks {
		if c.Name == "signature" {
			assert.Equal(t, diagnose.OK, c.Status, "signature with TOKENMGR_JWKS_URL: %+v", c)
			assert.Contains(t, c.Message, "/jwks", "signature with TOKENMGR_JWKS_URL")
		}
	}
}

func TestE2EDoctorWrongClientSecret(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	wrong := "wrong-secret-" + randText(t)
	sec.add(wrong)
	r := exe(t, sec, oauthVars(s).with("TOKENMGR_CLIENT_SECRET", wrong, "TOKENMGR_STORE", "memory"), "doctor")
	wantCode(t, r, 1)
	wantCheck(t, r, "credentials", "FAIL", "invalid_client", "client ID or secret wrong or revoked", "hint:")
	wantCheck(t, r, "token format", "SKIP")
	assert.Positive(t, s.TokenRequests.Load(), "a real token request was made")
}

func TestE2EDoctorClockSkew(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		off    time.Duration
		status string
		code   int
	}{
		{"20 minutes ahead", 20 * time.Minute, "FAIL", 1},
		{"2 minutes behind", -2 * time.Minute, "WARN", 0},
		{"in step", 0, "OK", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, sec := oauthServer(t, tokenmgrtest.Options{})
			s.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path == "/token" {
					w.Header().Set("Date", time.Now().Add(tc.off).UTC().Format(http.TimeFormat))
				}
				return false
			})
			r := exe(t, sec, oauthVars(s).with("TOKENMGR_STORE", "memory"), "doctor")
			wantCode(t, r, tc.code)
			wantCheck(t, r, "clock", tc.status)
			switch {
			case tc.off > 0:
				wantCheck(t, r, "clock", tc.status, "ahead of this machine's clock", "hint:")
			case tc.off < 0:
				wantCheck(t, r, "clock", tc.status, "behind this machine's clock", "hint:")
			}
			wantCheck(t, r, "credentials", "OK")
		})
	}
}

func TestE2EDoctorTokenFindings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		mode, check, status string
		words               []string
	}{
		{"expired", "expiry", "FAIL", []string{"fresh token: expired", "ago", "exp claim", "clock"}},
		{"nbf", "expiry", "FAIL", []string{"not valid yet", "nbf"}},
		{"malformed", "token format", "FAIL", []string{"malformed JWT: claims is not base64url"}},
		{"none", "token format", "FAIL", []string{"alg none", "forge"}},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			t.Parallel()
			s := newJWTIssuer(t, tc.mode)
			sec := issuerSecrets(s)
			r := exe(t, sec, s.vars().with("TOKENMGR_STORE", "memory"), "doctor")
			wantCode(t, r, 1)
			wantCheck(t, r, "credentials", "OK")
			wantCheck(t, r, tc.check, tc.status, tc.words...)
			switch tc.mode {
			case "expired":
				wantCheck(t, r, "signature", "OK") // still genuinely signed
			case "malformed", "none":
				wantCheck(t, r, "signature", "SKIP")
			}
			d := doctorJSONOf(t, exe(t, sec, s.vars().with("TOKENMGR_STORE", "memory"), "doctor", "--json"))
			assert.False(t, d.OK, "doctor --json: %+v", d)
			assert.Equal(t, 1, d.Failed, "doctor --json: %+v", d)
		})
	}
}

func TestE2EDoctorSignatureMismatch(t *testing.T) {
	t.Parallel()
	t.Run("discovered key set holds another key under the same kid", func(t *testing.T) {
		t.Parallel()
		s := newJWTIssuer(t, "good")
		s.publishKeyB()
		sec := issuerSecrets(s)
		r := exe(t, sec, s.vars().with("TOKENMGR_STORE", "memory"), "doctor")
		wantCode(t, r, 1)
		wantCheck(t, r, "signature", "FAIL", "tampered, or signed by another key", "signature does not verify")
		wantCheck(t, r, "token format", "OK")
	})
	t.Run("TOKENMGR_JWKS_URL of another issuer", func(t *testing.T) {
		t.Parallel()
		s, other := newJWTIssuer(t, "good"), newJWTIssuer(t, "good")
		sec := issuerSecrets(s)
		r := exe(t, sec, s.vars().with("TOKENMGR_STORE", "memory"), "doctor", "--jwks-url", other.URL+"/jwks")
		wantCode(t, r, 1)
		wantCheck(t, r, "signature", "FAIL", "tampered, or signed by another key", other.URL+"/jwks")
	})
	t.Run("key set without the token's kid", func(t *testing.T) {
		t.Parallel()
		s := newJWTIssuer(t, "good")
		sec := issuerSecrets(s)
		keys := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &s.keyB.PublicKey, KeyID: "key-b", Use: "sig"}}})
		}))
		defer keys.Close()
		r := exe(t, sec, s.vars().with("TOKENMGR_STORE", "memory", "TOKENMGR_JWKS_URL", keys.URL), "doctor")
		wantCode(t, r, 1)
		wantCheck(t, r, "signature", "FAIL", "tampered, or signed by another key", `no key with kid "key-a"`)
	})
}

func TestE2EDoctorInvalidGrant(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{Rotate: true})
	seed := s.IssueRefreshToken()
	sec.add(seed)
	refresh := vars{"TOKENMGR_TOKEN_URL": s.TokenURL(), "TOKENMGR_CLIENT_ID": s.ClientID, "TOKENMGR_REFRESH_TOKEN": seed}
	stored := fileStoreVars(t).with(refresh.flat()...)

	// The first run redeems the seed; the server rotates it, so the seed
	// is dead from now on and the store holds its successor.
	wantCode(t, exe(t, sec, stored, "token"), 0)

	r := exe(t, sec, refresh.with("TOKENMGR_STORE", "memory"), "doctor")
	wantCode(t, r, 1)
	wantCheck(t, r, "credentials", "FAIL", "refresh_token grant", "invalid_grant", "expired, revoked or already used", "logout")
	// (oauth2's auth style detection presents it twice: header, then form.)
	dead := s.InvalidGrants.Load()
	assert.Positive(t, dead, "the server saw the dead refresh token")

	// With the store, doctor redeems the stored refresh token and saves the
	// rotated one: a second doctor run still succeeds.
	for i := range 2 {
		r = exe(t, sec, stored, "doctor")
		wantCode(t, r, 0)
		wantCheck(t, r, "credentials", "OK", "refresh_token grant", "with a refresh token")
		wantCheck(t, r, "token format", "OK", "stored token: opaque")
		_ = i
	}
	assert.Equal(t, dead, s.InvalidGrants.Load(), "doctor keeps a rotated refresh token: no more invalid grants")
}

func TestE2EDoctorCheckURL(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	env := fileStoreVars(t).with(oauthVars(s).flat()...).with("TOKENMGR_CHECK_URL", s.URL+"/v1/whoami")

	r := exe(t, sec, env, "token")
	wantCode(t, r, 0)
	tok := strings.TrimSpace(r.stdout)

	r = exe(t, sec, env, "doctor")
	wantCode(t, r, 0)
	wantCheck(t, r, "clock (check URL)", "OK")
	wantCheck(t, r, "check URL", "OK", "accepted the stored token", "200")

	s.Revoke(tok)
	r = exe(t, sec, env, "doctor")
	wantCode(t, r, 1)
	wantCheck(t, r, "check URL", "FAIL", "403 InvalidClientTokenId", "invalid token", "logout")
	d := doctorJSONOf(t, exe(t, sec, env, "doctor", "--json"))
	var found bool
	for _, c := range d.Checks {
		if c.Name == "check URL" {
			found = c.Status == diagnose.Fail && strings.Contains(c.Message, "InvalidClientTokenId")
		}
	}
	assert.True(t, found, "doctor --json: the check URL fails with InvalidClientTokenId: %+v", d)
	assert.False(t, d.OK, "doctor --json: %+v", d)
}

func TestE2EDoctorWrongStorePassphrase(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	env := fileStoreVars(t).with(oauthVars(s).flat()...)
	wantCode(t, exe(t, sec, env.with("TOKENMGR_KEY_CACHE", "on"), "token"), 0) // the key is cached
	wrong := "not the passphrase " + randText(t)
	sec.add(wrong)
	bad := env.with("TOKENMGR_STORE_PASSPHRASE", wrong)
	// doctor checks the passphrase itself, not the cached key, which
	// opens the file whatever the passphrase.
	r := exe(t, sec, bad.with("TOKENMGR_KEY_CACHE", "on"), "doctor")
	wantCode(t, r, 1)
	wantCheck(t, r, "store", "FAIL", "wrong passphrase", "TOKENMGR_STORE_PASSPHRASE")
	r = exe(t, sec, bad, "doctor")
	wantCode(t, r, 1)
	wantCheck(t, r, "store", "FAIL", "wrong passphrase", "TOKENMGR_STORE_PASSPHRASE")
	wantCheck(t, r, "credentials", "OK") // the endpoint is fine; only the store is not
	for _, cmd := range []string{"status", "logout", "token"} {
		r := exe(t, sec, bad, cmd)
		wantCode(t, r, 1)
		assert.Contains(t, r.stderr, "wrong passphrase", "%s with the wrong passphrase", cmd)
		assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "%s with the wrong passphrase: one line: %s", cmd, r)
	}
}

func TestE2EDoctorOAuthErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code  string
		words []string
	}{
		{"unauthorized_client", []string{"may not use this grant type", "allow the grant"}},
		{"invalid_scope", []string{"a requested scope is unknown or not allowed", "requested: read admin"}},
	} {
		t.Run(tc.code, func(t *testing.T) {
			t.Parallel()
			s, sec := oauthServer(t, tokenmgrtest.Options{})
			// The endpoint checks the client, then refuses the request as a
			// real authorization server would.
			s.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path != "/token" || r.Method != http.MethodPost {
					return false
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(map[string]string{"error": tc.code})
				return true
			})
			r := exe(t, sec, oauthVars(s).with("TOKENMGR_STORE", "memory", "TOKENMGR_SCOPES", "read,admin"), "doctor")
			wantCode(t, r, 1)
			wantCheck(t, r, "credentials", "FAIL", append([]string{tc.code + ":", "HTTP 400", "hint:"}, tc.words...)...)
		})
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
	// Offline, with a static token, the same.
	static := vars{"TOKENMGR_ACCESS_TOKEN": "static-secret-token", "TOKENMGR_STORE": "file",
		"TOKENMGR_STORE_PATH": env["TOKENMGR_STORE_PATH"], "TOKENMGR_STORE_PASSPHRASE": passphrase}
	wantCheck(t, runIn(static, "doctor", "--offline"), "store", "FAIL", "cannot be created", "TOKENMGR_STORE_PATH")
	// And token, with that store chosen by name, fails rather than
	// printing a token it cannot keep.
	r = exe(t, sec, env, "token")
	wantCode(t, r, 1)
	assert.Empty(t, r.stdout, "token prints no token it could not keep")
}

// doctor must not send a stored token outside TOKENMGR_ALLOWED_HOSTS, even
// when the credential variables are incomplete.
func TestDoctorAllowedHostsWithIncompleteConfig(t *testing.T) {
	var got atomic.Value
	got.Store("")
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.Store(r.Header.Get("Authorization"))
	}))
	defer api.Close()
	env := fileStoreVars(t)
	st, err := store.NewEncryptedFile(env["TOKENMGR_STORE_PATH"], []byte(passphrase))
	require.NoError(t, err)
	b, _ := (&record.Record{V: 1, AccessToken: "stored-secret-token", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}).Encode()
	require.NoError(t, st.Save(context.Background(), "default", b))
	env = env.with("TOKENMGR_TOKEN_URL", "https://auth.example.com/token", // no CLIENT_ID: config unusable
		"TOKENMGR_ALLOWED_HOSTS", "api.example.com",
		"TOKENMGR_CHECK_URL", api.URL+"/v1")
	r := runIn(env, "doctor", "--timeout", "5s")
	require.Empty(t, got.Load().(string), "token sent to %s, which is not in TOKENMGR_ALLOWED_HOSTS", api.URL)
	assert.NotEqual(t, 0, r.code, "doctor passed with a check URL outside the allowed hosts:\n%s", r.stdout)
}

// doctor and the transport share one host rule: with TOKENMGR_ALLOWED_HOSTS
// = api.example.com, a check URL on "api.example.com." (trailing dot) is
// refused by the transport, so doctor must not pass it (it used to trim the
// dot and call the API).
func TestDoctorTrailingDotHostAsTransport(t *testing.T) {
	env := vars{
		"TOKENMGR_ACCESS_TOKEN":  "static-secret-token",
		"TOKENMGR_ALLOWED_HOSTS": "api.example.com",
		"TOKENMGR_CHECK_URL":     "https://api.example.com./v1",
		"TOKENMGR_STORE":         "memory",
	}
	r := runIn(env, "doctor", "--timeout", "2s")
	wantCheck(t, r, "check URL", "FAIL", "api.example.com.", "TOKENMGR_ALLOWED_HOSTS", "not sent")
	assert.Equal(t, exitFail, r.code, "doctor's exit status:\n%s", r)
}

func TestDoctorOfflineNeedsNoNetwork(t *testing.T) {
	s := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	env := fileStoreVars(t).with(oauthVars(s).flat()...)
	r := runIn(env, "token")
	require.Equal(t, 0, r.code, "token: %s", r)
	s.Close() // nothing answers from now on
	before := s.TokenRequests.Load()
	r = runIn(env, "doctor", "--offline")
	require.Equal(t, 0, r.code, "doctor --offline: %s", r)
	wantCheck(t, r, "store", "OK", "an access token expiring in")
	wantCheck(t, r, "credentials", "SKIP", "offline")
	wantCheck(t, r, "token format", "OK", "stored token: opaque")
	wantCheck(t, r, "expiry", "OK")
	assert.Equal(t, before, s.TokenRequests.Load(), "doctor --offline makes no request")
	// Online, the dead endpoint is a clock warning and a credentials failure.
	r = runIn(env, "doctor", "--timeout", "2s")
	require.Equal(t, 1, r.code, "doctor: %s", r)
	wantCheck(t, r, "clock", "WARN", "cannot read the time")
	wantCheck(t, r, "credentials", "FAIL", "cannot reach the token endpoint")
}

func TestDoctorBadURLVariables(t *testing.T) {
	env := vars{"TOKENMGR_ACCESS_TOKEN": seg(`{"alg":"ES256"}`) + "." + seg(`{"iss":"https://x.example"}`) + ".c2ln",
		"TOKENMGR_CHECK_URL": "http://api.example.com/v1", "TOKENMGR_JWKS_URL": "not a url"}
	r := runIn(env, "doctor")
	require.Equal(t, 1, r.code, "doctor: %s", r)
	wantCheck(t, r, "check URL", "FAIL", "plain http", "not sent")
	wantCheck(t, r, "signature", "FAIL", "TOKENMGR_JWKS_URL: not an absolute URL")
	// A host outside TOKENMGR_ALLOWED_HOSTS is a configuration problem:
	// found offline too.
	r = runIn(env.with("TOKENMGR_CHECK_URL", "https://api.example.com/v1", "TOKENMGR_ALLOWED_HOSTS", "*.internal.example", "TOKENMGR_JWKS_URL", ""), "doctor", "--offline")
	wantCheck(t, r, "check URL", "FAIL", "api.example.com is not in TOKENMGR_ALLOWED_HOSTS", "not sent")
	r = runIn(env.with("TOKENMGR_CHECK_URL", "https://api.internal.example/v1", "TOKENMGR_ALLOWED_HOSTS", "*.internal.example", "TOKENMGR_JWKS_URL", ""), "doctor", "--offline")
	wantCheck(t, r, "check URL", "SKIP", "offline")
}

func TestDoctorReportsEveryBadVariable(t *testing.T) {
	env := vars{"TOKENMGR_TOKEN_URL": "https://auth.example/token", "TOKENMGR_CLIENT_ID": "c", "TOKENMGR_CLIENT_SECRET": "s3cret-value",
		"TOKENMGR_AUTH_STYLE": "sideways", "TOKENMGR_REFRESH_BEFORE": "soon", "TOKENMGR_STORE": "floppy"}
	r := runIn(env, "doctor", "--offline")
	require.Equal(t, 1, r.code, "doctor: %s", r)
	require.NotContains(t, r.stdout, "s3cret-value", "doctor prints no secret")
	for _, v := range []string{"TOKENMGR_AUTH_STYLE", "TOKENMGR_REFRESH_BEFORE", "TOKENMGR_STORE"} {
		assert.Contains(t, r.stdout, "FAIL  configuration  "+v+": ", "no configuration failure for %s:\n%s", v, r.stdout)
	}
	wantCheck(t, r, "variables", "OK", "CLIENT_SECRET=(set)", "REFRESH_TOKEN=(unset)", "STORE_PASSPHRASE=(unset)", "AUTH_STYLE=sideways")
}
