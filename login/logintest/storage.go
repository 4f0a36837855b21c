package logintest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// storage is the provider's memory: clients, the one user, pending
// sign-ins, device codes, access and refresh tokens. It implements
// op.Storage and op.DeviceAuthorizationStorage for zitadel's op package.
type storage struct {
	p   *Provider
	key *rsa.PrivateKey
	kid string

	mu       sync.Mutex
	requests map[string]*authRequest // by ID
	codes    map[string]string       // code -> request ID
	access   map[string]*grant       // access token ID -> grant
	refresh  map[string]*grant       // refresh token -> grant
	devices  map[string]*deviceGrant // device code -> state
	byUser   map[string]string       // user code -> device code
}

// grant is what a token was issued for.
type grant struct {
	subject, clientID string
	scopes, amr       []string
	authTime          time.Time
}

func (g *grant) GetAMR() []string            { return g.amr }
func (g *grant) GetAudience() []string       { return []string{g.clientID} }
func (g *grant) GetAuthTime() time.Time      { return g.authTime }
func (g *grant) GetClientID() string         { return g.clientID }
func (g *grant) GetScopes() []string         { return g.scopes }
func (g *grant) GetSubject() string          { return g.subject }
func (g *grant) SetCurrentScopes(s []string) { g.scopes = s }

type deviceGrant struct {
	state    op.DeviceAuthorizationState
	userCode string
	polls    int
}

func newStorage(p *Provider) (*storage, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	return &storage{
		p: p, key: k, kid: randomID(),
		requests: map[string]*authRequest{}, codes: map[string]string{}, access: map[string]*grant{},
		refresh: map[string]*grant{}, devices: map[string]*deviceGrant{}, byUser: map[string]string{},
	}, nil
}

func randomID() string {
	b := make([]byte, 24)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// authRequest is one pending browser sign-in.
type authRequest struct {
	id       string
	req      oidc.AuthRequest
	done     bool
	subject  string
	authTime time.Time
}

func (a *authRequest) GetID() string          { return a.id }
func (a *authRequest) GetACR() string         { return "" }
func (a *authRequest) GetAMR() []string       { return []string{"pwd"} }
func (a *authRequest) GetAudience() []string  { return []string{a.req.ClientID} }
func (a *authRequest) GetAuthTime() time.Time { return a.authTime }
func (a *authRequest) GetClientID() string    { return a.req.ClientID }
func (a *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if a.req.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: a.req.CodeChallenge, Method: a.req.CodeChallengeMethod}
}
func (a *authRequest) GetNonce() string                   { return a.req.Nonce }
func (a *authRequest) GetRedirectURI() string             { return a.req.RedirectURI }
func (a *authRequest) GetResponseType() oidc.ResponseType { return a.req.ResponseType }
func (a *authRequest) GetResponseMode() oidc.ResponseMode { return a.req.ResponseMode }
func (a *authRequest) GetScopes() []string                { return a.req.Scopes }
func (a *authRequest) GetState() string                   { return a.req.State }
func (a *authRequest) GetSubject() string                 { return a.subject }
func (a *authRequest) Done() bool                         { return a.done }

var errNotFound = errors.New("logintest: not found")

func (s *storage) CreateAuthRequest(_ context.Context, r *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := &authRequest{id: randomID(), req: *r}
	s.requests[a.id] = a
	return a, nil
}

func (s *storage) AuthRequestByID(_ context.Context, id string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.requests[id]
	if !ok {
		return nil, errNotFound
	}
	return a, nil
}

func (s *storage) AuthRequestByCode(_ context.Context, code string) (op.AuthRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.requests[s.codes[code]]
	if !ok {
		return nil, errNotFound
	}
	return a, nil
}

func (s *storage) SaveAuthCode(_ context.Context, id, code string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.codes[code] = id
	return nil
}

// DeleteAuthRequest makes the code single-use.
func (s *storage) DeleteAuthRequest(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.requests, id)
	for c, rid := range s.codes {
		if rid == id {
			delete(s.codes, c)
		}
	}
	return nil
}

// approve marks a pending sign-in as the user's.
func (s *storage) approve(id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.requests[id]
	if !ok {
		return errNotFound
	}
	a.done, a.subject, a.authTime = true, s.p.User.Subject, time.Now()
	return nil
}

func grantOf(r op.TokenRequest) *grant {
	g := &grant{subject: r.GetSubject(), scopes: r.GetScopes(), authTime: time.Now()}
	switch r := r.(type) {
	case *authRequest:
		g.clientID, g.amr, g.authTime = r.GetClientID(), r.GetAMR(), r.authTime
	case *grant:
		g.clientID, g.amr, g.authTime = r.clientID, r.amr, r.authTime
	case *op.DeviceAuthorizationState:
		g.clientID, g.amr, g.authTime = r.ClientID, r.AMR, r.AuthTime
	}
	return g
}

func (s *storage) CreateAccessToken(_ context.Context, r op.TokenRequest) (string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := randomID()
	s.access[id] = grantOf(r)
	return id, time.Now().Add(s.p.opts.AccessTokenLifetime), nil
}

// CreateAccessAndRefreshTokens rotates: the refresh token presented is
// used up, and a new one issued.
func (s *storage) CreateAccessAndRefreshTokens(_ context.Context, r op.TokenRequest, current string) (string, string, time.Time, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := grantOf(r)
	if current != "" {
		if _, ok := s.refresh[current]; !ok {
			return "", "", time.Time{}, op.ErrInvalidRefreshToken
		}
		delete(s.refresh, current)
		s.p.rotations.Add(1)
	}
	id, rt := randomID(), randomID()
	s.access[id] = g
	s.refresh[rt] = g
	return id, rt, time.Now().Add(s.p.opts.AccessTokenLifetime), nil
}

func (s *storage) TokenRequestByRefreshToken(_ context.Context, rt string) (op.RefreshTokenRequest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.refresh[rt]
	if !ok {
		return nil, errors.New("logintest: unknown refresh token")
	}
	c := *g
	c.scopes = slices.Clone(g.scopes)
	return &c, nil
}

func (s *storage) TerminateSession(context.Context, string, string) error { return nil }

func (s *storage) RevokeToken(_ context.Context, token, _, _ string) *oidc.Error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// A refresh token comes as itself (GetRefreshTokenInfo gives it as
	// its own ID), an access token as its ID.
	if _, ok := s.refresh[token]; ok {
		delete(s.refresh, token)
		s.p.revocations.Add(1)
		return nil
	}
	if _, ok := s.access[token]; ok {
		delete(s.access, token)
		s.p.revocations.Add(1)
	}
	return nil
}

func (s *storage) GetRefreshTokenInfo(_ context.Context, _ string, token string) (string, string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.refresh[token]
	if !ok {
		return "", "", op.ErrInvalidRefreshToken
	}
	return g.subject, token, nil
}

type signingKey struct{ s *storage }

func (k signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return jose.RS256 }
func (k signingKey) Key() any                                    { return k.s.key }
func (k signingKey) ID() string                                  { return k.s.kid }

type publicKey struct{ s *storage }

func (k publicKey) ID() string                                       { return k.s.kid }
func (k publicKey) Algorithm() jose.SignatureAlgorithm               { return jose.RS256 }
func (k publicKey) Use() string                                      { return "sig" }
func (k publicKey) Key() any                                         { return &k.s.key.PublicKey }
func (s *storage) SigningKey(context.Context) (op.SigningKey, error) { return signingKey{s}, nil }
func (s *storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}
func (s *storage) KeySet(context.Context) ([]op.Key, error) { return []op.Key{publicKey{s}}, nil }

func (s *storage) GetClientByClientID(_ context.Context, id string) (op.Client, error) {
	switch id {
	case s.p.PublicClientID:
		return &client{id: id, p: s.p}, nil
	case s.p.ConfidentialClientID:
		return &client{id: id, p: s.p, confidential: true}, nil
	}
	return nil, errNotFound
}

func (s *storage) AuthorizeClientIDSecret(_ context.Context, id, secret string) error {
	if id == s.p.ConfidentialClientID && secret == s.p.ClientSecret {
		return nil
	}
	return errors.New("logintest: wrong client or secret")
}

func (s *storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's claims.
func (s *storage) SetUserinfoFromRequest(_ context.Context, u *oidc.UserInfo, _ op.IDTokenRequest, scopes []string) error {
	s.p.userinfo(u, scopes)
	return nil
}

func (s *storage) SetUserinfoFromToken(_ context.Context, u *oidc.UserInfo, tokenID, _, _ string) error {
	s.mu.Lock()
	g, ok := s.access[tokenID]
	s.mu.Unlock()
	if !ok {
		return errNotFound
	}
	s.p.userinfo(u, g.scopes)
	return nil
}

func (s *storage) SetIntrospectionFromToken(context.Context, *oidc.IntrospectionResponse, string, string, string) error {
	return nil
}

func (s *storage) GetPrivateClaimsFromScopes(context.Context, string, string, []string) (map[string]any, error) {
	return nil, nil
}

func (s *storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errNotFound
}

func (s *storage) ValidateJWTProfileScopes(_ context.Context, _ string, scopes []string) ([]string, error) {
	return scopes, nil
}

func (s *storage) Health(context.Context) error { return nil }

func (s *storage) StoreDeviceAuthorization(_ context.Context, clientID, deviceCode, userCode string, expires time.Time, scopes []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.byUser[userCode]; dup {
		return op.ErrDuplicateUserCode
	}
	s.devices[deviceCode] = &deviceGrant{state: op.DeviceAuthorizationState{ClientID: clientID, Scopes: scopes, Expires: expires}, userCode: userCode}
	s.byUser[userCode] = deviceCode
	return nil
}

func (s *storage) GetDeviceAuthorizatonState(_ context.Context, clientID, deviceCode string) (*op.DeviceAuthorizationState, error) {
	s.mu.Lock()
	d, ok := s.devices[deviceCode]
	if ok {
		d.polls++
	}
	s.mu.Unlock()
	if !ok || d.state.ClientID != clientID {
		return nil, errNotFound
	}
	s.p.devicePolls.Add(1)
	if hook := s.p.opts.OnDevicePoll; hook != nil {
		if err := hook(d.polls); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := d.state
	return &st, nil
}

// device decides a pending device sign-in by its user code.
func (s *storage) device(userCode string, approve bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[s.byUser[userCode]]
	if !ok {
		return errNotFound
	}
	if approve {
		d.state.Done, d.state.Subject, d.state.AMR, d.state.AuthTime = true, s.p.User.Subject, []string{"pwd"}, time.Now()
	} else {
		d.state.Denied = true
	}
	return nil
}

// revokeAll forgets every refresh token: the next refresh is invalid_grant.
func (s *storage) revokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.refresh)
}

// client is one of the provider's two clients: a public native one
// (PKCE, no secret) and a confidential one, both with loopback redirects
// on any port (RFC 8252 §7.3) and the device grant.
type client struct {
	id           string
	p            *Provider
	confidential bool
}

func (c *client) GetID() string { return c.id }
func (c *client) RedirectURIs() []string {
	return []string{"http://127.0.0.1/callback", "http://[::1]/callback"}
}
func (c *client) PostLogoutRedirectURIs() []string { return nil }
func (c *client) ApplicationType() op.ApplicationType {
	if c.confidential {
		return op.ApplicationTypeWeb // zitadel's word for a client with a secret
	}
	return op.ApplicationTypeNative
}

// RedirectURIGlobs lets the confidential (web) client's loopback
// redirect have any port, as the native one's may.
func (c *client) RedirectURIGlobs() []string {
	return []string{"http://127.0.0.1:*/callback", "http://[::1]:*/callback"}
}

func (c *client) PostLogoutRedirectURIGlobs() []string { return nil }
func (c *client) AuthMethod() oidc.AuthMethod {
	if c.confidential {
		return oidc.AuthMethodBasic
	}
	return oidc.AuthMethodNone
}
func (c *client) ResponseTypes() []oidc.ResponseType {
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}
func (c *client) GrantTypes() []oidc.GrantType {
	return []oidc.GrantType{oidc.GrantTypeCode, oidc.GrantTypeRefreshToken, oidc.GrantTypeDeviceCode}
}
func (c *client) LoginURL(id string) string           { return "/login?id=" + id }
func (c *client) AccessTokenType() op.AccessTokenType { return op.AccessTokenTypeBearer }
func (c *client) IDTokenLifetime() time.Duration      { return c.p.opts.IDTokenLifetime }
func (c *client) DevMode() bool                       { return false }
func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}
func (c *client) IsScopeAllowed(string) bool           { return false }
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }
func (c *client) ClockSkew() time.Duration             { return 0 }
