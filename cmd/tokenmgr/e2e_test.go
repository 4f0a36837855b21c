package main

// End-to-end tests: the binary TestMain builds, run with a controlled
// environment against real servers (tokenmgrtest, and a JWT issuer
// made with go-jose in helpers_test.go). Every run is checked for secrets
// in its output (see exe).

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/diagnose"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

func oauthServer(t *testing.T, opt tokenmgrtest.Options) (*tokenmgrtest.Server, *secrets) {
	t.Helper()
	s := tokenmgrtest.NewServer(opt)
	t.Cleanup(s.Close)
	sec := &secrets{}
	sec.add(s.ClientSecret)
	return s, sec
}

func oauthVars(s *tokenmgrtest.Server) vars {
	return vars{"TOKENMGR_TOKEN_URL": s.TokenURL(), "TOKENMGR_CLIENT_ID": s.ClientID, "TOKENMGR_CLIENT_SECRET": s.ClientSecret}
}

func issuerSecrets(s *jwtIssuer) *secrets {
	sec := &secrets{}
	sec.add(s.secret)
	sec.watch(s.tokens)
	return sec
}

func wantCode(t *testing.T, r result, code int) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d, got:\n%s", code, r)
	}
}

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
		if !strings.Contains(r.stdout, w) {
			t.Errorf("status lacks %q:\n%s", w, r.stdout)
		}
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
	if !strings.Contains(r.stdout, `deleted credential "default"`) {
		t.Errorf("logout: %s", r)
	}
	r = exe(t, sec, env, "status")
	wantCode(t, r, 1)
	if !strings.Contains(r.stdout, "nothing stored") {
		t.Errorf("status after logout: %s", r)
	}
	r = exe(t, sec, env, "status", "--json")
	wantCode(t, r, 1)
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Held {
		t.Errorf("status --json after logout: %v %s", err, r)
	}
	r = exe(t, sec, env, "logout")
	wantCode(t, r, 0)
	if !strings.Contains(r.stdout, "nothing stored") {
		t.Errorf("second logout: %s", r)
	}
}

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
	if !strings.Contains(r.stdout, "no check failed") || strings.Contains(r.stdout, "\x1b[") {
		t.Errorf("summary or colour: %s", r)
	}

	// --json, and the key set named explicitly.
	r = exe(t, sec, env.with("TOKENMGR_JWKS_URL", s.URL+"/jwks"), "doctor", "--json")
	wantCode(t, r, 0)
	d := doctorJSONOf(t, r)
	if !d.OK || d.Failed != 0 {
		t.Errorf("doctor --json: %+v", d)
	}
	for _, c := range d.Checks {
		if c.Name == "signature" && (c.Status != diagnose.OK || !strings.Contains(c.Message, "/jwks")) {
			t.Errorf("signature with TOKENMGR_JWKS_URL: %+v", c)
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
	if s.TokenRequests.Load() == 0 {
		t.Error("no real token request was made")
	}
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
			if d.OK || d.Failed != 1 {
				t.Errorf("doctor --json: %+v", d)
			}
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
	if dead == 0 {
		t.Errorf("the server saw no dead refresh token")
	}

	// With the store, doctor redeems the stored refresh token and saves the
	// rotated one: a second doctor run still succeeds.
	for i := range 2 {
		r = exe(t, sec, stored, "doctor")
		wantCode(t, r, 0)
		wantCheck(t, r, "credentials", "OK", "refresh_token grant", "with a refresh token")
		wantCheck(t, r, "token format", "OK", "stored token: opaque")
		_ = i
	}
	if n := s.InvalidGrants.Load(); n != dead {
		t.Errorf("doctor lost a rotated refresh token: %d more invalid grants", n-dead)
	}
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
	if !found || d.OK {
		t.Errorf("doctor --json: %+v", d)
	}
}

func TestE2EDoctorWrongStorePassphrase(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	env := fileStoreVars(t).with(oauthVars(s).flat()...)
	wantCode(t, exe(t, sec, env, "token"), 0)
	wrong := "not the passphrase " + randText(t)
	sec.add(wrong)
	bad := env.with("TOKENMGR_STORE_PASSPHRASE", wrong)
	r := exe(t, sec, bad, "doctor")
	wantCode(t, r, 1)
	wantCheck(t, r, "store", "FAIL", "wrong passphrase", "TOKENMGR_STORE_PASSPHRASE")
	wantCheck(t, r, "credentials", "OK") // the endpoint is fine; only the store is not
	for _, cmd := range []string{"status", "logout", "token"} {
		r := exe(t, sec, bad, cmd)
		wantCode(t, r, 1)
		if !strings.Contains(r.stderr, "wrong passphrase") || strings.Count(r.stderr, "\n") != 1 {
			t.Errorf("%s with the wrong passphrase: %s", cmd, r)
		}
	}
}

func TestE2EHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"-h"}, {"help"}, {"help", "doctor"}} {
		r := exe(t, &secrets{}, vars{}, args...)
		wantCode(t, r, 0)
		if !strings.Contains(r.stdout, "Usage:") || !strings.Contains(r.stdout, "tokenmgr") || r.stderr != "" {
			t.Errorf("%v: %s", args, r)
		}
		if args[0] != "help" || len(args) == 1 {
			// The variables, from the library's table: a go install user
			// has no package docs.
			for _, d := range append(append([]tokenmgr.EnvDoc(nil), tokenmgr.EnvDocs...), diagnose.EnvDocs...) {
				if !strings.Contains(r.stdout, d.Name+"  ") || !strings.Contains(r.stdout, d.Doc) {
					t.Errorf("%v: %s is not listed with its doc", args, d.Name)
				}
			}
		}
	}
	for _, c := range commands {
		for _, h := range []string{"--help", "-h"} {
			r := exe(t, &secrets{}, vars{}, c.name, h)
			wantCode(t, r, 0)
			if !strings.HasPrefix(r.stdout, "Usage: tokenmgr "+c.name+" [flags]") || r.stderr != "" {
				t.Errorf("%s %s: %s", c.name, h, r)
			}
		}
	}
	r := exe(t, &secrets{}, vars{}, "version")
	wantCode(t, r, 0)
	if !strings.HasPrefix(r.stdout, "tokenmgr ") {
		t.Errorf("version: %s", r)
	}
	for _, args := range [][]string{{}, {"frobnicate"}, {"status", "--bogus"}, {"token", "extra"}} {
		r := exe(t, &secrets{}, vars{}, args...)
		wantCode(t, r, 2)
		if r.stderr == "" {
			t.Errorf("%v: usage error with empty stderr", args)
		}
	}
}

// TestE2ENoSecretInAnyOutput runs every command, in text and JSON, in
// success and failure, with every secret variable set, and checks (in exe)
// that no secret shows anywhere but on the stdout of "token".
func TestE2ENoSecretInAnyOutput(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{Rotate: true})
	seed := s.IssueRefreshToken()
	static := "static-" + randText(t)
	sec.add(seed, static)
	env := fileStoreVars(t).with(oauthVars(s).flat()...).with(
		"TOKENMGR_REFRESH_TOKEN", seed, "TOKENMGR_CHECK_URL", s.URL+"/api")
	tokens := map[string]bool{}
	sec.watch(func() []string {
		var out []string
		for k := range tokens {
			out = append(out, k)
		}
		return out
	})
	all := [][]string{{"status"}, {"status", "--json"}, {"doctor"}, {"doctor", "--json"}, {"doctor", "--offline"}, {"version"}}
	r := exe(t, sec, env, "token")
	wantCode(t, r, 0)
	tokens[strings.TrimSpace(r.stdout)] = true
	for _, args := range all {
		exe(t, sec, env, args...)
	}
	// Failures: a wrong client secret with a dead refresh token, a bad
	// variable, a static token set together with the token URL (an
	// error), and a static token alone.
	s.Revoke(strings.TrimSpace(r.stdout))
	broken := env.with("TOKENMGR_CLIENT_SECRET", "x"+s.ClientSecret, "TOKENMGR_STORE", "memory")
	for _, args := range append(all, []string{"token"}) {
		exe(t, sec, broken, args...)
		exe(t, sec, broken.with("TOKENMGR_AUTH_STYLE", "sideways"), args...)
		exe(t, sec, env.with("TOKENMGR_ACCESS_TOKEN", static), args...)
		exe(t, sec, vars{"TOKENMGR_ACCESS_TOKEN": static}, args...)
	}
	exe(t, sec, env, "logout")
	exe(t, sec, env, "status")
}

// flat turns vars into key, value pairs for with.
func (v vars) flat() []string {
	var out []string
	for k, x := range v {
		out = append(out, k, x)
	}
	return out
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
	if !strings.Contains(r.stdout, "EXPIRED") {
		t.Errorf("status of an expired token:\n%s", r)
	}
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
