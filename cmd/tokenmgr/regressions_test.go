package main

import (
	"context"
	"net/http"
	"net/http/httptest"
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
