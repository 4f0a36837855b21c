package login

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
)

// elsewhere is another origin (another loopback port): it records every
// request body that reaches it.
func elsewhere(t *testing.T) (*httptest.Server, *atomic.Value) {
	var got atomic.Value
	got.Store("")
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got.Store(got.Load().(string) + string(b))
		http.Error(w, "no", http.StatusBadRequest)
	}))
	t.Cleanup(srv.Close)
	return srv, &got
}

// A 307 from the revocation endpoint to another origin would re-post the
// refresh token there: the redirect is refused, the token stays home.
func TestRevokeRefusesCrossOriginRedirect(t *testing.T) {
	other, got := elsewhere(t)
	var issuer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "token_endpoint": issuer + "/token", "revocation_endpoint": issuer + "/revoke"})
		case "/revoke":
			http.Redirect(w, r, other.URL+"/revoke", http.StatusTemporaryRedirect)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	issuer = srv.URL

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := store.NewMemory()
	b, err := record.FromToken(&oauth2.Token{AccessToken: "at-secret", RefreshToken: "rt-secret"}, time.Now()).Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Save(ctx, "default", b); err != nil {
		t.Fatal(err)
	}
	err = Revoke(ctx, Config{Issuer: issuer, ClientID: "cli", Store: st})
	if err == nil {
		t.Fatal("Revoke followed a redirect to another origin without an error")
	}
	if s := got.Load().(string); strings.Contains(s, "rt-secret") {
		t.Fatalf("the refresh token reached another origin: %q", s)
	}
}

// A 307 from the device token endpoint to another origin would re-post
// the device code there: the redirect is refused.
func TestDeviceRefusesCrossOriginRedirect(t *testing.T) {
	other, got := elsewhere(t)
	var base string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/device":
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"device_code": "dc-secret", "user_code": "ABCD", "verification_uri": base + "/verify", "expires_in": 60, "interval": 1})
		case "/token":
			http.Redirect(w, r, other.URL+"/token", http.StatusTemporaryRedirect)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	base = srv.URL

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := Device(ctx, Config{ClientID: "cli", Endpoint: oauth2.Endpoint{DeviceAuthURL: base + "/device", TokenURL: base + "/token"},
		OnDeviceCode: func(*oauth2.DeviceAuthResponse) {}})
	if err == nil {
		t.Fatal("Device followed a redirect to another origin without an error")
	}
	if s := got.Load().(string); strings.Contains(s, "dc-secret") {
		t.Fatalf("the device code reached another origin: %q", s)
	}
}

// Revoke sends only this sign-in's token to the issuer: what another
// configuration stored under the key (AWS credentials, another issuer's
// sign-in) never goes there.
func TestRevokeSendsNoOtherConfigurationsToken(t *testing.T) {
	var got atomic.Value
	got.Store("")
	var issuer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]string{"issuer": issuer, "token_endpoint": issuer + "/token", "revocation_endpoint": issuer + "/revoke"})
		case "/revoke":
			b, _ := io.ReadAll(r.Body)
			got.Store(string(b))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	issuer = srv.URL

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st := store.NewMemory()
	r := record.FromToken(&oauth2.Token{AccessToken: "aws-session-token"}, time.Now())
	r.Source = "0123456789abcdef01234567"
	b, err := r.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Save(ctx, "default", b); err != nil {
		t.Fatal(err)
	}
	err = Revoke(ctx, Config{Issuer: issuer, ClientID: "cli", Store: st})
	if !errors.Is(err, tokenmgr.ErrKeyInUse) {
		t.Fatalf("Revoke of another configuration's credential: err %v, want ErrKeyInUse", err)
	}
	if s := got.Load().(string); strings.Contains(s, "aws-session-token") {
		t.Fatalf("another configuration's token went to the issuer: %q", s)
	}
}
