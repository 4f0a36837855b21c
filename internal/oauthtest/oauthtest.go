// Package oauthtest runs a real OAuth 2.0 token endpoint (RFC 6749:
// client_credentials and a rotating refresh_token grant) and a protected
// API that rejects expired or revoked tokens the way AWS does, for tests,
// examples and the CLI's demo. It is not a production server.
package oauthtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// AWSInvalidClientTokenId is the body STS sends for a token it does not
// accept (403, text/xml).
const AWSInvalidClientTokenId = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>InvalidClientTokenId</Code>
    <Message>The security token included in the request is invalid</Message>
  </Error>
  <RequestId>16fc956c-311e-4199-bee1-1680236e9698</RequestId>
</ErrorResponse>
`

// Server is a token endpoint and a protected API on one httptest server:
// POST /token issues tokens, anything else is the API.
type Server struct {
	*httptest.Server

	ClientID     string
	ClientSecret string

	mu       sync.Mutex
	lifetime time.Duration
	tokens   map[string]time.Time // access token → expiry
	refresh  map[string]bool      // live refresh tokens (single use when rotating)
	rotate   bool
	now      func() time.Time
	hook     func(w http.ResponseWriter, r *http.Request) bool

	TokenRequests atomic.Int64 // requests to /token
	Issued        atomic.Int64 // tokens issued
	APIRequests   atomic.Int64 // requests to the API
	Rejected      atomic.Int64 // API requests rejected for their token
	InvalidGrants atomic.Int64 // refresh tokens presented that were dead
}

// Options configures New.
type Options struct {
	Lifetime time.Duration    // token lifetime; default 1h
	Rotate   bool             // issue a new refresh token on each refresh and kill the old one
	Now      func() time.Time // the server's clock; default time.Now
}

// New starts a server. Close it when done.
func New(opt Options) *Server {
	s := &Server{
		ClientID:     "demo-client",
		ClientSecret: "demo-secret-" + randHex(8),
		lifetime:     opt.Lifetime,
		tokens:       map[string]time.Time{},
		refresh:      map[string]bool{},
		rotate:       opt.Rotate,
		now:          opt.Now,
	}
	if s.lifetime == 0 {
		s.lifetime = time.Hour
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	return s
}

// TokenURL is the token endpoint's URL.
func (s *Server) TokenURL() string { return s.URL + "/token" }

// SetLifetime changes the lifetime of tokens issued from now on.
func (s *Server) SetLifetime(d time.Duration) {
	s.mu.Lock()
	s.lifetime = d
	s.mu.Unlock()
}

// SetHook installs a function that sees every request first; when it
// returns true it has answered and the server does nothing more. For fault
// injection.
func (s *Server) SetHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

// IssueRefreshToken makes a refresh token the server accepts.
func (s *Server) IssueRefreshToken() string {
	rt := "rt-" + randHex(16)
	s.mu.Lock()
	s.refresh[rt] = true
	s.mu.Unlock()
	return rt
}

// Revoke makes the API reject token from now on.
func (s *Server) Revoke(token string) {
	s.mu.Lock()
	delete(s.tokens, token)
	s.mu.Unlock()
}

// Valid reports whether the API accepts token now.
func (s *Server) Valid(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	exp, ok := s.tokens[token]
	return ok && s.now().Before(exp)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	hook := s.hook
	s.mu.Unlock()
	if r.URL.Path == "/token" {
		s.TokenRequests.Add(1)
	} else {
		s.APIRequests.Add(1)
	}
	if hook != nil && hook(w, r) {
		return
	}
	if r.URL.Path == "/token" {
		s.token(w, r)
		return
	}
	s.api(w, r)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		oauthError(w, http.StatusMethodNotAllowed, "invalid_request", "POST only")
		return
	}
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	grant := r.PostForm.Get("grant_type")
	if id != s.ClientID || (secret != s.ClientSecret && !(grant == "refresh_token" && secret == "")) {
		w.Header().Set("WWW-Authenticate", `Basic realm="token"`)
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	resp := map[string]any{"token_type": "Bearer", "expires_in": int64(s.lifetime / time.Second)}
	if s.lifetime%time.Second != 0 || s.lifetime < time.Second {
		// Sub-second lifetimes for fast tests: expires_in must be whole
		// seconds, so round up and let the API enforce the real expiry.
		resp["expires_in"] = int64((s.lifetime + time.Second - 1) / time.Second)
	}
	switch grant {
	case "client_credentials":
		if sc := r.PostForm.Get("scope"); sc != "" {
			resp["scope"] = sc
		}
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		if !s.refresh[rt] {
			s.InvalidGrants.Add(1)
			oauthError(w, http.StatusBadRequest, "invalid_grant", "refresh token is invalid, expired, revoked or already used")
			return
		}
		if s.rotate {
			delete(s.refresh, rt)
			nrt := "rt-" + randHex(16)
			s.refresh[nrt] = true
			resp["refresh_token"] = nrt
		}
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "")
		return
	}
	at := "at-" + randHex(16)
	s.tokens[at] = s.now().Add(s.lifetime)
	resp["access_token"] = at
	s.Issued.Add(1)
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	json.NewEncoder(w).Encode(resp)
}

func (s *Server) api(w http.ResponseWriter, r *http.Request) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !s.Valid(tok) {
		s.Rejected.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, AWSInvalidClientTokenId)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "hello from %s", r.URL.Path)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	m := map[string]string{"error": code}
	if desc != "" {
		m["error_description"] = desc
	}
	json.NewEncoder(w).Encode(m)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
