package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenmgr/tokenmgr/internal/record"
	"github.com/tokenmgr/tokenmgr/store"
)

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
	if err != nil {
		t.Fatal(err)
	}
	b, _ := (&record.Record{V: 1, AccessToken: "stored-secret-token", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}).Encode()
	if err := st.Save(context.Background(), "default", b); err != nil {
		t.Fatal(err)
	}
	env = env.with("TOKENMGR_TOKEN_URL", "https://auth.example.com/token", // no CLIENT_ID: config unusable
		"TOKENMGR_ALLOWED_HOSTS", "api.example.com",
		"TOKENMGR_CHECK_URL", api.URL+"/v1")
	r := runIn(env, "doctor", "--timeout", "5s")
	if v := got.Load().(string); v != "" {
		t.Fatalf("token sent to %s, which is not in TOKENMGR_ALLOWED_HOSTS", api.URL)
	}
	if r.code == 0 {
		t.Errorf("doctor passed with a check URL outside the allowed hosts:\n%s", r.stdout)
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

// status --json answers in JSON on failure too, and shows an id_token's
// non-secret claims without the id_token itself.
func TestStatusJSONErrorAndIDTokenClaims(t *testing.T) {
	env := fileStoreVars(t)
	st, err := store.NewEncryptedFile(env["TOKENMGR_STORE_PATH"], []byte(passphrase))
	if err != nil {
		t.Fatal(err)
	}
	idt := seg(`{"alg":"RS256","kid":"id1"}`) + "." + seg(`{"iss":"https://login.example","sub":"user-42","aud":"client-7"}`) + ".aWRzaWduYXR1cmU"
	b, _ := (&record.Record{V: 1, AccessToken: "opaque-at-secret", TokenType: "Bearer", IDToken: idt, Expiry: time.Now().Add(time.Hour)}).Encode()
	if err := st.Save(context.Background(), "default", b); err != nil {
		t.Fatal(err)
	}
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
	if r.code != 1 {
		t.Fatalf("exit %d, want 1: %s", r.code, r)
	}
	out = statusJSON{}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Error == "" || out.Held {
		t.Fatalf("a failure is not JSON on stdout: %v %s", err, r)
	}
	if strings.Contains(r.stdout+r.stderr, "wrong-passphrase") {
		t.Fatal("the passphrase was printed")
	}
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
			if r.code == 0 {
				t.Fatalf("%s with style %s passed against a server rejecting the client:\n%s", cmd, style, r)
			}
			for _, enc := range encodings {
				if strings.Contains(r.stdout+r.stderr, enc) {
					t.Errorf("%s (auth style %s) shows the secret as %q:\n%s", cmd, style, enc, r)
				}
			}
		}
	}
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
	if r.code != exitFail {
		t.Errorf("doctor exit %d, want %d:\n%s", r.code, exitFail, r)
	}
}

// doctor said the store was OK when the directory of its file could not be
// created (here: a parent is a symbolic link to nowhere).
func TestDoctorStoreDirectoryCannotBeCreated(t *testing.T) {
	dir := t.TempDir()
	if err := os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "link")); err != nil {
		t.Skip("no symbolic links here:", err)
	}
	env := vars{"TOKENMGR_ACCESS_TOKEN": "static-secret-token", "TOKENMGR_STORE": "file",
		"TOKENMGR_STORE_PATH": filepath.Join(dir, "link", "sub", "credentials.enc"), "TOKENMGR_STORE_PASSPHRASE": passphrase}
	r := runIn(env, "doctor", "--offline")
	wantCheck(t, r, "store", "FAIL", "cannot be created", "TOKENMGR_STORE_PATH")
}
