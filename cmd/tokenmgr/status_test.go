package main

// tokenmgr status and logout: what is held (never the token itself),
// JSON output on success and failure, deleting and resetting the store.

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/diagnose/jwtinfo"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

func TestE2EStatusAndLogout(t *testing.T) {
	t.Parallel()
	s := newJWTIssuer(t, "good")
	sec := issuerSecrets(s)
	env := fileStoreVars(t).with(s.vars().flat()...)
	storeOnly := env.without("TOKENMGR_TOKEN_URL", "TOKENMGR_CLIENT_ID", "TOKENMGR_CLIENT_SECRET", "TOKENMGR_SCOPES")

	wantCode(t, exe(t, sec, env, "token"), 0)

	r := exe(t, sec, env, "status")
	wantCode(t, r, 0)
	for _, w := range []string{"credential", "default", "file(", "Bearer (JWT, alg ES256, kid key-a)", "(in 1h)", "read write",
		"refresh token", "none", "issuer (iss)", s.URL, "service-42", "https://api.example.com", "issued (iat)", "not before (nbf)"} {
		assert.Contains(t, r.stdout, w, "status lacks %q:\n%s", w, r.stdout)
	}

	// status reads the store alone: no credential variables needed.
	r = exe(t, sec, storeOnly, "status", "--json")
	wantCode(t, r, 0)
	var st statusJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &st), "status --json:\n%s", r)
	assert.True(t, st.Held)
	assert.Equal(t, "store", st.Source)
	assert.Equal(t, "jwt", st.Format)
	assert.Equal(t, "Bearer", st.TokenType)
	assert.False(t, st.RefreshToken)
	assert.False(t, st.Expired)
	if assert.NotNil(t, st.JWT) {
		assert.Equal(t, "ES256", st.JWT.Alg)
		if assert.NotNil(t, st.JWT.Claims) {
			assert.Equal(t, s.URL, st.JWT.Claims.Issuer)
			assert.Equal(t, "service-42", st.JWT.Claims.Subject)
		}
	}
	assert.Equal(t, []string{"read", "write"}, st.Scopes)
	if assert.NotNil(t, st.ExpiresInSeconds) {
		assert.GreaterOrEqual(t, *st.ExpiresInSeconds, int64(3500))
	}
	assert.True(t, strings.HasPrefix(st.Store, "file("), "store %q", st.Store)

	r = exe(t, sec, storeOnly, "logout")
	wantCode(t, r, 0)
	assert.Contains(t, r.stdout, `deleted credential "default"`, "logout: %s", r)
	r = exe(t, sec, env, "status")
	wantCode(t, r, 1)
	assert.Contains(t, r.stdout, "nothing stored", "status after logout: %s", r)
	r = exe(t, sec, env, "status", "--json")
	wantCode(t, r, 1)
	if assert.NoError(t, json.Unmarshal([]byte(r.stdout), &st), "status --json after logout: %s", r) {
		assert.False(t, st.Held, "status --json after logout")
	}
	r = exe(t, sec, env, "logout")
	wantCode(t, r, 0)
	assert.Contains(t, r.stdout, "nothing stored", "second logout: %s", r)
}

// status --json answers in JSON on failure too, and shows an id_token's
// non-secret claims without the id_token itself.
func TestStatusJSONErrorAndIDTokenClaims(t *testing.T) {
	env := fileStoreVars(t)
	st, err := store.NewEncryptedFile(env["TOKENMGR_STORE_PATH"], []byte(passphrase))
	require.NoError(t, err)
	idt := seg(`{"alg":"RS256","kid":"id1"}`) + "." + seg(`{"iss":"https://login.example","sub":"user-42","aud":"client-7"}`) + ".aWRzaWduYXR1cmU"
	b, _ := (&record.Record{V: 1, AccessToken: "opaque-at-secret", TokenType: "Bearer", IDToken: idt, Expiry: time.Now().Add(time.Hour)}).Encode()
	require.NoError(t, st.Save(context.Background(), "default", b))
	r := runIn(env, "status", "--json")
	var out statusJSON
	require.Equal(t, 0, r.code, "status --json: %s", r)
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), "status --json: %s", r)
	require.NotNil(t, out.IDTokenJWT, "id_token claims")
	require.NotNil(t, out.IDTokenJWT.Claims, "id_token claims")
	require.Equal(t, "user-42", out.IDTokenJWT.Claims.Subject)
	for _, secret := range []string{idt, "aWRzaWduYXR1cmU", "opaque-at-secret"} {
		require.NotContains(t, r.stdout, secret, "status prints no token")
	}
	assert.Contains(t, runIn(env, "status").stdout, "id token subject (sub)", "text status shows the id token's claims")

	r = runIn(env.with("TOKENMGR_STORE_PASSPHRASE", "wrong-passphrase"), "status", "--json")
	require.Equal(t, 1, r.code, "exit %d, want 1: %s", r.code, r)
	out = statusJSON{}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out), "a failure is JSON on stdout: %s", r)
	require.NotEmpty(t, out.Error)
	require.False(t, out.Held)
	require.NotContains(t, r.stdout+r.stderr, "wrong-passphrase", "the passphrase was printed")
}

func TestStatusStaticJWT(t *testing.T) {
	exp := time.Now().Add(-time.Hour).Unix()
	tok := seg(`{"alg":"RS256","kid":"k9"}`) + "." + seg(`{"iss":"https://login.example","sub":"u1","aud":"api","exp":`+itoa(exp)+`}`) + ".c2lnbmF0dXJl"
	r := runIn(vars{"TOKENMGR_ACCESS_TOKEN": tok}, "status")
	require.Equal(t, 0, r.code, "status: %s", r)
	require.NotContains(t, r.stdout, tok, "status prints no token")
	require.NotContains(t, r.stdout, "c2lnbmF0dXJl", "status prints no signature")
	for _, w := range []string{"TOKENMGR_ACCESS_TOKEN (static", "JWT, alg RS256, kid k9", "EXPIRED", "https://login.example", "u1", "api"} {
		assert.Contains(t, r.stdout, w, "status lacks %q:\n%s", w, r.stdout)
	}
	r = runIn(vars{"TOKENMGR_ACCESS_TOKEN": tok}, "status", "--json")
	var st statusJSON
	if assert.NoError(t, json.Unmarshal([]byte(r.stdout), &st), "status --json: %s", r) {
		assert.True(t, st.Expired)
		assert.Equal(t, "static", st.Source)
		if assert.NotNil(t, st.JWT) {
			assert.Equal(t, "k9", st.JWT.Kid)
		}
	}

	// A static token is inspected by doctor without any network.
	r = runIn(vars{"TOKENMGR_ACCESS_TOKEN": tok}, "doctor", "--offline")
	require.Equal(t, 1, r.code, "doctor: %s", r)
	require.NotContains(t, r.stdout, tok, "doctor prints no token")
	wantCheck(t, r, "expiry", "FAIL", "static token: expired", "TOKENMGR_ACCESS_TOKEN")
	wantCheck(t, r, "signature", "SKIP", "offline")
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
	assert.Contains(t, r.stderr, "logout --reset", "logout of an unopenable store offers no way out:\n%s", r)
	r = exe(t, sec, wrong, "logout", "--reset")
	wantCode(t, r, 0)
	path := file["TOKENMGR_STORE_PATH"]
	assert.Contains(t, r.stdout, "deleted the store file "+path, "reset says what it deleted")
	assert.Contains(t, r.stdout, "every credential", "reset says what it deleted")
	_, err := os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "the store file is gone")
	// Afresh with the new passphrase.
	wantCode(t, exe(t, sec, oauthVars(s).with(wrong.flat()...), "token"), 0)
	assert.EqualValues(t, 2, s.Issued.Load())

	// Not a tokenmgr file: refused, kept.
	other := filepath.Join(t.TempDir(), "notes.txt")
	require.NoError(t, os.WriteFile(other, []byte("my notes, not a store\n"), 0o600))
	r = exe(t, sec, wrong.with("TOKENMGR_STORE_PATH", other), "logout", "--reset")
	wantCode(t, r, 1)
	_, err = os.Stat(other)
	require.NoError(t, err, "logout --reset keeps a file that is not a store")
}

// logout removes the credential's lock file, which would otherwise stay
// beside the store, one per credential ever used; another credential's
// stays, and so does the file's writers' lock.
func TestE2ELogoutRemovesLockFiles(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	file := fileStoreVars(t)
	path := file["TOKENMGR_STORE_PATH"]
	locks := func() []string {
		m, err := filepath.Glob(path + ".*.lock")
		require.NoError(t, err)
		return m
	}
	wantCode(t, exe(t, sec, oauthVars(s).with(file.flat()...), "token"), 0)
	wantCode(t, exe(t, sec, oauthVars(s).with(file.flat()...).with("TOKENMGR_KEY", "other"), "token"), 0)
	require.Len(t, locks(), 2, "one lock file per credential")
	r := exe(t, sec, file, "logout")
	wantCode(t, r, 0)
	assert.Len(t, locks(), 1, "logout removed its credential's lock file: %v", locks())
	assert.FileExists(t, path+".lock", "the writers' lock stays")
	wantCode(t, exe(t, sec, oauthVars(s).with(file.flat()...), "token"), 0) // and the lock works afresh
	assert.Len(t, locks(), 2)
}

// A token's claims are its issuer's text, verified or not: an escape
// sequence or a newline in them is shown escaped, never sent to the
// terminal, in status and in the login's "signed in as".
func TestClaimsArePrintedSafely(t *testing.T) {
	evil := "mallory\x1b]0;owned\x07\n[ok] forged line"
	c := jwtinfo.Claims{Issuer: evil, Subject: evil, Email: evil, Name: evil, Audience: []string{evil}}
	var out strings.Builder
	claimRows(func(k, v string) { out.WriteString(k + ": " + v + "\n") }, "", &jwtJSON{Claims: &c}, time.Now())
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		assert.NotContains(t, line, "\x1b", "a raw escape reached the terminal: %q", line)
		assert.NotContains(t, line, "\x07")
		assert.False(t, strings.HasPrefix(line, "[ok]"), "a claim's newline started a line of its own: %q", line)
	}
	assert.Contains(t, out.String(), `email: mallory\x1b]0;owned`)
	for _, who := range []jwtinfo.Claims{{Email: evil}, {Name: evil}, {Subject: evil}} {
		p := person(who)
		assert.NotContains(t, p, "\x1b")
		assert.NotContains(t, p, "\n")
	}
}
