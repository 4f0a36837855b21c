package main

// The CLI's tests are end to end: the binary TestMain builds, run with a
// controlled environment against real servers (tokenmgrtest, and a JWT
// issuer made with go-jose below). Every run is checked for secrets in its
// output (see exe). Tests are in the file of the command they exercise.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/diagnose"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// binPath is the tokenmgr binary TestMain builds for the end-to-end tests.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "tokenmgr-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "tokenmgr")
	if runtime.GOOS == "windows" {
		binPath += ".exe"
	}
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building tokenmgr:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const passphrase = "correct horse battery staple 42"

// vars is a controlled environment for one invocation.
type vars map[string]string

func (v vars) with(kv ...string) vars {
	out := vars{}
	for k, x := range v {
		out[k] = x
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func (v vars) without(names ...string) vars {
	out := v.with()
	for _, n := range names {
		delete(out, n)
	}
	return out
}

func (v vars) lookup(name string) (string, bool) {
	x, ok := v[name]
	return x, ok
}

// fileStoreVars returns variables for an encrypted file store in a fresh
// directory. The file is created here at the lowest scrypt cost the store
// accepts (an existing file keeps the cost in its header), so that each
// run of the binary opens it fast; it holds no credential.
func fileStoreVars(t *testing.T) vars {
	t.Helper()
	path := filepath.Join(t.TempDir(), "credentials.enc")
	st, err := store.NewEncryptedFile(path, []byte(passphrase), store.FileOptions{ScryptLogN: 10})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, st.Save(ctx, "__init", []byte("x")))
	require.NoError(t, st.Delete(ctx, "__init"))
	// Without the session key cache: it is shared by every process of the
	// user (tests running at once among them), and while it holds a file's
	// key it opens the file whatever the passphrase (package store), which
	// tests of a wrong passphrase must not meet.
	return vars{"TOKENMGR_STORE": "file", "TOKENMGR_STORE_PATH": path, "TOKENMGR_STORE_PASSPHRASE": passphrase, "TOKENMGR_KEY_CACHE": "off"}
}

// result is one run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// secretPattern matches the tokens tokenmgrtest issues.
var secretPattern = regexp.MustCompile(`\b(at|rt)-[0-9a-f]{32}\b`)

// secrets collects the secrets a test must never see in output.
type secrets struct {
	mu      sync.Mutex
	list    []string
	sources []func() []string // secrets known only later, such as issued tokens
}

func (s *secrets) watch(f func() []string) {
	s.mu.Lock()
	s.sources = append(s.sources, f)
	s.mu.Unlock()
}

func (s *secrets) add(v ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, x := range v {
		if x != "" {
			s.list = append(s.list, x)
		}
	}
}

func (s *secrets) check(t *testing.T, what, out string) {
	t.Helper()
	s.mu.Lock()
	all := append([]string{passphrase}, s.list...)
	for _, f := range s.sources {
		all = append(all, f()...)
	}
	s.mu.Unlock()
	for _, x := range all {
		if strings.Contains(out, x) { // the message quotes only the start of the secret
			assert.Fail(t, "a secret is shown", "%s shows a secret (%.12s…):\n%s", what, x, out)
		}
		// A JWT's signature alone is as good as a leak of the token.
		if p := strings.Split(x, "."); len(p) == 3 && len(p[2]) > 8 && strings.Contains(out, p[2]) {
			assert.Fail(t, "a JWT signature is shown", "%s shows a JWT signature:\n%s", what, out)
		}
	}
	if m := secretPattern.FindString(out); m != "" {
		assert.Fail(t, "a token is shown", "%s shows a token %.6s…:\n%s", what, m, out)
	}
}

// exe runs the built binary with exactly env (plus HOME and
// XDG_CONFIG_HOME in a temporary directory) and checks that no secret
// appears in its output, except on the stdout of "token".
func exe(t *testing.T, sec *secrets, env vars, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return exeCtx(ctx, t, sec, env, args...)
}

// exeCtx is exe with the process killed when ctx ends (its exit code is
// then -1), for a test whose subject is that the command returns in time.
func exeCtx(ctx context.Context, t *testing.T, sec *secrets, env vars, args ...string) result {
	t.Helper()
	return exeBin(ctx, t, binPath, sec, env, args...)
}

// exeBin is exeCtx running the binary at bin.
func exeBin(ctx context.Context, t *testing.T, bin string, sec *secrets, env vars, args ...string) result {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	home := t.TempDir()
	cmd.Env = []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else {
		require.NoError(t, err, "running tokenmgr %v", args)
	}
	if sec != nil {
		name := "tokenmgr " + strings.Join(args, " ")
		if len(args) == 0 || args[0] != "token" {
			sec.check(t, name+" stdout", r.stdout)
		}
		sec.check(t, name+" stderr", r.stderr)
	}
	return r
}

// closedPort returns a loopback address where nothing listens: a
// connection to it is refused at once.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// runIn runs the command in process.
func runIn(env vars, args ...string) result {
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr, env.lookup)
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

// line returns the doctor output line of the named check.
func line(t *testing.T, r result, name string) string {
	t.Helper()
	for _, l := range strings.Split(r.stdout, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		rest := strings.TrimSpace(strings.TrimPrefix(l, f[0]))
		if strings.HasPrefix(rest, name+"  ") || rest == name {
			return l
		}
	}
	require.FailNow(t, "no such line in doctor's output", "%q:\n%s", name, r)
	return ""
}

// wantCheck asserts the status of a doctor check and that its line
// contains each of the words.
func wantCheck(t *testing.T, r result, name, status string, words ...string) {
	t.Helper()
	l := line(t, r, name)
	assert.True(t, strings.HasPrefix(l, status+" "), "check %q: want %s, got line %q\nfull output:\n%s", name, status, l, r)
	for _, w := range words {
		assert.Contains(t, l, w, "check %q: line %q lacks %q", name, l, w)
	}
}

// doctorJSON is the output of doctor --json.
type doctorJSON struct {
	OK       bool             `json:"ok"`
	Failed   int              `json:"failed"`
	Warnings int              `json:"warnings"`
	Checks   []diagnose.Check `json:"checks"`
}

// doctorJSONOf decodes doctor --json output.
func doctorJSONOf(t *testing.T, r result) doctorJSON {
	t.Helper()
	var d doctorJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &d), "doctor --json:\n%s", r)
	return d
}

// jwtIssuer is a token endpoint that issues real signed JWTs (ES256 by
// key A, kid "key-a") with the client credentials grant, and publishes
// its keys by OIDC discovery at its own URL (the iss of its tokens).
type jwtIssuer struct {
	*httptest.Server
	clientID, secret string
	keyA, keyB       *ecdsa.PrivateKey

	mu       sync.Mutex
	mode     string // "good", "expired", "nbf", "malformed", "none"
	jwksKeyB bool   // publish key B under kid "key-a" instead of key A
	issued   []string
}

func newJWTIssuer(t *testing.T, mode string) *jwtIssuer {
	t.Helper()
	s := &jwtIssuer{clientID: "jwt-client", secret: "jwt-secret-" + randText(t), mode: mode, keyA: ecKey(t), keyB: ecKey(t)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"issuer": s.URL, "jwks_uri": s.URL + "/jwks", "token_endpoint": s.URL + "/token"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		k := s.keyA
		if s.jwksKeyB {
			k = s.keyB
		}
		s.mu.Unlock()
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: "key-a", Algorithm: "ES256", Use: "sig"}}}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(set)
	})
	// Assigned before it starts: handlers read s.URL.
	s.Server = httptest.NewUnstartedServer(mux)
	s.Start()
	t.Cleanup(s.Close)
	return s
}

func (s *jwtIssuer) vars() vars {
	return vars{
		"TOKENMGR_TOKEN_URL": s.URL + "/token", "TOKENMGR_CLIENT_ID": s.clientID,
		"TOKENMGR_CLIENT_SECRET": s.secret, "TOKENMGR_SCOPES": "read write",
	}
}

func (s *jwtIssuer) token(w http.ResponseWriter, r *http.Request) {
	id, secret, ok := r.BasicAuth()
	if !ok {
		r.ParseForm()
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != s.clientID || secret != s.secret {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"invalid_client"}`)
		return
	}
	s.mu.Lock()
	mode := s.mode
	s.mu.Unlock()
	now := time.Now()
	claims := map[string]any{
		"iss": s.URL, "sub": "service-42", "aud": []string{"https://api.example.com"},
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix(), "scope": "read write",
	}
	var tok string
	switch mode {
	case "expired": // a server whose tokens are dated an hour in the past
		claims["exp"], claims["iat"], claims["nbf"] = now.Add(-10*time.Minute).Unix(), now.Add(-70*time.Minute).Unix(), now.Add(-70*time.Minute).Unix()
	case "nbf":
		claims["nbf"] = now.Add(20 * time.Minute).Unix()
	}
	switch mode {
	case "malformed": // a valid header, claims that are not base64url (in b64token characters, which the endpoint may send)
		tok = seg(`{"alg":"ES256","typ":"JWT","kid":"key-a"}`) + ".eyJzdWIiOi~~~not-base64.c2lnbmF0dXJlLWJ5dGVz"
	case "none":
		b, _ := json.Marshal(claims)
		tok = seg(`{"alg":"none","typ":"JWT"}`) + "." + seg(string(b)) + "."
	default:
		tok = signES256(s.keyA, "key-a", claims)
	}
	s.mu.Lock()
	s.issued = append(s.issued, tok)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600, "scope": "read write"})
}

// publishKeyB makes the key set hold key B under kid "key-a".
func (s *jwtIssuer) publishKeyB() {
	s.mu.Lock()
	s.jwksKeyB = true
	s.mu.Unlock()
}

func (s *jwtIssuer) tokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

func seg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func ecKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

func signES256(k *ecdsa.PrivateKey, kid string, claims map[string]any) string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		panic(err)
	}
	b, _ := json.Marshal(claims)
	jws, err := signer.Sign(b)
	if err != nil {
		panic(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		panic(err)
	}
	return out
}

func randText(t testing.TB) string {
	b := make([]byte, 12)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return base64.RawURLEncoding.EncodeToString(b)
}

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
	require.Equal(t, code, r.code, "exit status of:\n%s", r)
}

// flat turns vars into key, value pairs for with.
func (v vars) flat() []string {
	var out []string
	for k, x := range v {
		out = append(out, k, x)
	}
	return out
}

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
