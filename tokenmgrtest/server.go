// Package tokenmgrtest provides an OAuth 2.0 authorization server and a
// protected API for testing code that uses tokenmgr, or any OAuth 2.0
// client, in the style of [net/http/httptest].
//
// A [Server] is a real RFC 6749 token endpoint on a local
// [httptest.Server]: it issues bearer tokens for the client_credentials
// grant and for the refresh_token grant (rotating refresh tokens if asked),
// answers errors in the RFC 6749 section 5.2 JSON form, and serves a
// protected API that rejects a token once it has expired or been revoked.
// Tests drive it through revocation ([Server.Revoke],
// [Server.RevokeRefreshToken]), the lifetime of the tokens it issues
// ([Server.SetLifetime]) and a fault hook that may answer any request
// itself ([Server.SetHook]); its counters say what it was asked.
//
// It is a test server: it keeps everything in memory, trusts its one
// client, and is not meant to be run in production.
package tokenmgrtest

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

// AWSInvalidClientTokenId is the body AWS STS sends for a token it does
// not accept (403, text/xml). The [Server]'s API rejects tokens with it:
// the rejection a client can recognise only from the body.
const AWSInvalidClientTokenId = `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>InvalidClientTokenId</Code>
    <Message>The security token included in the request is invalid</Message>
  </Error>
  <RequestId>16fc956c-311e-4199-bee1-1680236e9698</RequestId>
</ErrorResponse>
`

// Server is a token endpoint and a protected API on one
// [httptest.Server]: POST /token (see [Server.TokenURL]) issues tokens;
// any other path is the API, which answers 200 to a request whose
// Authorization header carries a token it issued that is still valid, and
// 403 with [AWSInvalidClientTokenId] otherwise.
//
// A Server is safe for concurrent use. Close it when done.
type Server struct {
	*httptest.Server

	// ClientID and ClientSecret are the credentials of the one client the
	// token endpoint accepts, in the Authorization header (Basic) or in
	// the form (client_id, client_secret). The secret is random.
	ClientID     string
	ClientSecret string

	mu       sync.Mutex
	lifetime time.Duration
	tokens   map[string]time.Time // access token → expiry
	refresh  map[string]bool      // live refresh tokens (single use when rotating)
	rotate   bool
	now      func() time.Time
	hook     func(w http.ResponseWriter, r *http.Request) bool

	// What the server was asked (TokenRequests and APIRequests count every
	// request, before the hook runs) and what it answered itself.
	TokenRequests atomic.Int64 // requests to /token
	Issued        atomic.Int64 // access tokens issued
	APIRequests   atomic.Int64 // requests to the API
	Rejected      atomic.Int64 // API requests rejected for their token
	InvalidGrants atomic.Int64 // refresh tokens presented that were not live
}

// Options configures [NewServer]. The zero value is a server issuing
// one-hour tokens on the real clock.
type Options struct {
	// Lifetime of the access tokens issued (expires_in, rounded up to
	// whole seconds; the API enforces the exact lifetime). Default 1h.
	Lifetime time.Duration
	// Rotate makes every refresh_token grant issue a new refresh token and
	// revoke the one presented, as many providers do.
	Rotate bool
	// Now is the server's clock, for expiries; default time.Now.
	Now func() time.Time
}

// NewServer starts a server on a loopback port and returns it. The caller
// must Close it.
func NewServer(opt Options) *Server {
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

// TokenURL is the token endpoint's URL, for a client configuration's
// TokenURL.
func (s *Server) TokenURL() string { return s.URL + "/token" }

// InMemoryTransport returns an [http.RoundTripper] that serves requests
// to s (its URL's host) by calling its handler in the calling goroutine,
// with no network connection. Use it where a network would get in the
// way, above all in a [testing/synctest] bubble: a goroutine waiting on a
// socket is not durably blocked, so the bubble's fake clock would not
// advance while a connection is open. Create the Server outside the
// bubble, and give the code under test an [http.Client] with this
// transport (tokenmgr's Config.TokenHTTPClient for the token endpoint).
// A hook that hijacks the connection fails under it.
func (s *Server) InMemoryTransport() http.RoundTripper { return inMemory{s} }

type inMemory struct{ s *Server }

func (m inMemory) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		defer req.Body.Close()
	}
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	if host := strings.TrimPrefix(m.s.URL, "http://"); req.URL.Host != host {
		return nil, fmt.Errorf("tokenmgrtest: the in-memory transport reaches only %s, not %s", host, req.URL.Host)
	}
	sreq := req.Clone(req.Context())
	sreq.RequestURI = req.URL.RequestURI()
	sreq.RemoteAddr = "127.0.0.1:1"
	if sreq.Body == nil {
		sreq.Body = http.NoBody
	}
	rec := httptest.NewRecorder()
	m.s.Config.Handler.ServeHTTP(rec, sreq)
	resp := rec.Result()
	resp.Request = req
	return resp, nil
}

// SetLifetime changes the lifetime of tokens issued from now on.
func (s *Server) SetLifetime(d time.Duration) {
	s.mu.Lock()
	s.lifetime = d
	s.mu.Unlock()
}

// SetHook installs a function that sees every request (token endpoint and
// API) first, after the counters are updated. When it returns true it has
// written the response and the server does nothing more; when it returns
// false the server answers as usual. A hook injects faults: a 500 or 429
// from the token endpoint, a slow answer, a rejected API call. A nil hook
// removes it.
func (s *Server) SetHook(h func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

// IssueRefreshToken returns a new refresh token the refresh_token grant
// accepts, as a user's earlier authorization would have left.
func (s *Server) IssueRefreshToken() string {
	rt := "rt-" + randHex(16)
	s.mu.Lock()
	s.refresh[rt] = true
	s.mu.Unlock()
	return rt
}

// Revoke makes the API reject the access token from now on.
func (s *Server) Revoke(token string) {
	s.mu.Lock()
	delete(s.tokens, token)
	s.mu.Unlock()
}

// RevokeRefreshToken makes the refresh_token grant refuse rt from now on,
// with invalid_grant.
func (s *Server) RevokeRefreshToken(rt string) {
	s.mu.Lock()
	delete(s.refresh, rt)
	s.mu.Unlock()
}

// Valid reports whether the API accepts the access token now.
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
