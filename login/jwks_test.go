package login

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// The key set is outside data that go-oidc reads whole and quotes in its
// error: an endless one fails after maxJWKS, with a short error.
func TestHugeKeySetIsBounded(t *testing.T) {
	var issuer string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			json.NewEncoder(w).Encode(map[string]any{"issuer": issuer, "token_endpoint": issuer + "/token", "jwks_uri": issuer + "/keys",
				"id_token_signing_alg_values_supported": []string{"RS256"}})
		case "/keys":
			w.Header().Set("Content-Type", "application/json")
			chunk := []byte(strings.Repeat(" ", 64<<10))
			for range 256 { // 16 MiB
				if _, err := w.Write(chunk); err != nil {
					return
				}
			}
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	issuer = srv.URL

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := Config{Issuer: issuer, ClientID: "cli"}
	ep, err := resolve(ctx, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	enc := func(v any) string { b, _ := json.Marshal(v); return base64.RawURLEncoding.EncodeToString(b) }
	now := time.Now().Unix()
	raw := enc(map[string]string{"alg": "RS256", "kid": "k"}) + "." +
		enc(map[string]any{"iss": issuer, "aud": "cli", "sub": "s", "iat": now, "exp": now + 3600}) + "." +
		base64.RawURLEncoding.EncodeToString([]byte("not a signature"))
	tok := (&oauth2.Token{AccessToken: "at"}).WithExtra(map[string]any{"id_token": raw})
	_, err = cfg.checkIDToken(ctx, ep, tok, "")
	if err == nil {
		t.Fatal("an ID token verified against an endless key set")
	}
	if len(err.Error()) > 4<<10 {
		t.Fatalf("the error is %d bytes long: the key set was read whole", len(err.Error()))
	}
	if !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("the error does not say the key set is too large: %v", err)
	}
}
