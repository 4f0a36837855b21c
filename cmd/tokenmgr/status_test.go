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

	"github.com/tokenmgr/tokenmgr/internal/record"
	"github.com/tokenmgr/tokenmgr/store"
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
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r)
	}
	if !st.Held || st.Source != "store" || st.Format != "jwt" || st.TokenType != "Bearer" || st.RefreshToken || st.Expired ||
		st.JWT == nil || st.JWT.Alg != "ES256" || st.JWT.Claims == nil || st.JWT.Claims.Issuer != s.URL || st.JWT.Claims.Subject != "service-42" ||
		strings.Join(st.Scopes, " ") != "read write" || st.ExpiresInSeconds == nil || *st.ExpiresInSeconds < 3500 || !strings.HasPrefix(st.Store, "file(") {
		t.Errorf("status --json: %+v\n%s", st, r.stdout)
	}

	r = exe(t, sec, storeOnly, "logout")
	wantCode(t, r, 0)
	assert.Contains(t, r.stdout, `deleted credential "default"`, "logout: %s", r)
	r = exe(t, sec, env, "status")
	wantCode(t, r, 1)
	assert.Contains(t, r.stdout, "nothing stored", "status after logout: %s", r)
	r = exe(t, sec, env, "status", "--json")
	wantCode(t, r, 1)
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Held {
		t.Errorf("status --json after logout: %v %s", err, r)
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
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != 0 {
		t.Fatalf("status --json: %v %s", err, r)
	}
	if out.IDTokenJWT == nil || out.IDTokenJWT.Claims == nil || out.IDTokenJWT.Claims.Subject != "user-42" {
		t.Fatalf("id_token claims missing: %s", r.stdout)
	}
	if strings.Contains(r.stdout, idt) || strings.Contains(r.stdout, "aWRzaWduYXR1cmU") || strings.Contains(r.stdout, "opaque-at-secret") {
		t.Fatalf("status printed a token: %s", r.stdout)
	}
	if r := runIn(env, "status"); !strings.Contains(r.stdout, "id token subject (sub)") {
		t.Errorf("text status lacks the id token's claims:\n%s", r.stdout)
	}

	r = runIn(env.with("TOKENMGR_STORE_PASSPHRASE", "wrong-passphrase"), "status", "--json")
	require.Equal(t, 1, r.code, "exit %d, want 1: %s", r.code, r)
	out = statusJSON{}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Error == "" || out.Held {
		t.Fatalf("a failure is not JSON on stdout: %v %s", err, r)
	}
	require.NotContains(t, r.stdout+r.stderr, "wrong-passphrase", "the passphrase was printed")
}

func TestStatusStaticJWT(t *testing.T) {
	exp := time.Now().Add(-time.Hour).Unix()
	tok := seg(`{"alg":"RS256","kid":"k9"}`) + "." + seg(`{"iss":"https://login.example","sub":"u1","aud":"api","exp":`+itoa(exp)+`}`) + ".c2lnbmF0dXJl"
	r := runIn(vars{"TOKENMGR_ACCESS_TOKEN": tok}, "status")
	if r.code != 0 || strings.Contains(r.stdout, tok) || strings.Contains(r.stdout, "c2lnbmF0dXJl") {
		t.Fatalf("status: %s", r)
	}
	for _, w := range []string{"TOKENMGR_ACCESS_TOKEN (static", "JWT, alg RS256, kid k9", "EXPIRED", "https://login.example", "u1", "api"} {
		assert.Contains(t, r.stdout, w, "status lacks %q:\n%s", w, r.stdout)
	}
	r = runIn(vars{"TOKENMGR_ACCESS_TOKEN": tok}, "status", "--json")
	var st statusJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || !st.Expired || st.Source != "static" || st.JWT.Kid != "k9" {
		t.Errorf("status --json: %v %s", err, r)
	}

	// A static token is inspected by doctor without any network.
	r = runIn(vars{"TOKENMGR_ACCESS_TOKEN": tok}, "doctor", "--offline")
	if r.code != 1 || strings.Contains(r.stdout, tok) {
		t.Fatalf("doctor: %s", r)
	}
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
	require.NoError(t, os.WriteFile(other, []byte("my notes, not a store\n"), 0o600))
	r = exe(t, sec, wrong.with("TOKENMGR_STORE_PATH", other), "logout", "--reset")
	wantCode(t, r, 1)
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("logout --reset deleted a file that is not a store: %v", err)
	}
}
