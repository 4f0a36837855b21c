// Package logintest runs an OpenID provider in-process for tests and
// examples of package login: github.com/zitadel/oidc/v3's op package (not
// ours) serving discovery, the authorization code grant with PKCE, the
// device authorization grant, refresh-token rotation and revocation, on
// plain http at 127.0.0.1 (loopback, which login allows). Its sign-in
// step is a fixed user who approves (or, when told, denies) every request.
//
// It is its own module so that zitadel's dependencies reach no program
// that signs a person in, only tests.
package logintest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// User is the person who signs in.
type User struct {
	Subject, Email, Name string
}

// Options tune a Provider; the zero value is usable.
type Options struct {
	// AccessTokenLifetime of issued access tokens. Default 1h.
	AccessTokenLifetime time.Duration
	// IDTokenLifetime of issued ID tokens. Default 1h.
	IDTokenLifetime time.Duration
	// PollInterval is the device grant's interval. Default 1s (the least
	// RFC 8628 can say, in whole seconds).
	PollInterval time.Duration
	// DeviceLifetime is how long a user code lives. Default 5m.
	DeviceLifetime time.Duration
	// OnDevicePoll, when set, is called at each device poll (n counts
	// them from 1); context.DeadlineExceeded answers slow_down, another
	// error access_denied.
	OnDevicePoll func(n int) error
	// Middleware, when set, wraps the provider's handler: a test can
	// rewrite what the provider answers.
	Middleware func(http.Handler) http.Handler
}

// Provider is a running OpenID provider.
type Provider struct {
	// Issuer is its issuer URL, http://127.0.0.1:<port>.
	Issuer string
	// PublicClientID is a public (PKCE, no secret) client;
	// ConfidentialClientID and ClientSecret a confidential one.
	PublicClientID, ConfidentialClientID, ClientSecret string
	// User signs in.
	User User

	opts                                Options
	st                                  *storage
	op                                  *op.Provider
	srv                                 *http.Server
	ln                                  net.Listener
	served                              chan struct{}
	deny                                atomic.Bool
	counts                              map[string]*atomic.Int64
	rotations, revocations, devicePolls atomic.Int64
}

// Start runs a provider on a free loopback port. Close stops it.
func Start(opts Options) (*Provider, error) {
	if opts.AccessTokenLifetime == 0 {
		opts.AccessTokenLifetime = time.Hour
	}
	if opts.IDTokenLifetime == 0 {
		opts.IDTokenLifetime = time.Hour
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = time.Second
	}
	if opts.DeviceLifetime == 0 {
		opts.DeviceLifetime = 5 * time.Minute
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Provider{
		Issuer:         "http://" + ln.Addr().String(),
		PublicClientID: "tokenmgr-cli", ConfidentialClientID: "tokenmgr-app", ClientSecret: "logintest-client-secret-" + randomID(),
		User:   User{Subject: "user-alice", Email: "alice@example.com", Name: "Alice Example"},
		opts:   opts,
		ln:     ln,
		served: make(chan struct{}),
		counts: map[string]*atomic.Int64{},
	}
	for _, path := range []string{"/.well-known/openid-configuration", "/oauth/token", "/authorize", "/device_authorization", "/revoke", "/keys"} {
		p.counts[path] = new(atomic.Int64)
	}
	if p.st, err = newStorage(p); err != nil {
		ln.Close()
		return nil, err
	}
	key := [32]byte{}
	copy(key[:], randomID())
	p.op, err = op.NewProvider(&op.Config{
		CryptoKey:             key,
		CodeMethodS256:        true,
		AuthMethodPost:        true,
		GrantTypeRefreshToken: true,
		SupportedUILocales:    []language.Tag{language.English},
		DeviceAuthorization: op.DeviceAuthorizationConfig{
			Lifetime: opts.DeviceLifetime, PollInterval: opts.PollInterval,
			UserFormPath: "/device", UserCode: op.UserCodeBase20,
		},
	}, p.st, op.StaticIssuer(p.Issuer), op.WithAllowInsecure())
	if err != nil {
		ln.Close()
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/login", op.NewIssuerInterceptor(p.op.IssuerFromRequest).HandlerFunc(p.login))
	mux.Handle("/", p.op)
	var h http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := p.counts[r.URL.Path]; ok {
			c.Add(1)
		}
		mux.ServeHTTP(w, r)
	})
	if opts.Middleware != nil {
		h = opts.Middleware(h)
	}
	p.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { p.srv.Serve(ln); close(p.served) }()
	return p, nil
}

// Close stops the provider.
func (p *Provider) Close() error {
	err := p.srv.Close()
	<-p.served
	return err
}

// login is the provider's sign-in step: the fixed user approves, or
// denies when Deny(true) was called.
func (p *Provider) login(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("id")
	if p.deny.Load() {
		a, err := p.st.AuthRequestByID(r.Context(), id)
		if err != nil {
			http.Error(w, "unknown sign-in", http.StatusBadRequest)
			return
		}
		op.AuthRequestError(w, r, a, oidc.ErrAccessDenied().WithDescription("the user declined the sign-in"), p.op)
		return
	}
	if err := p.st.approve(id); err != nil {
		http.Error(w, "unknown sign-in", http.StatusBadRequest)
		return
	}
	http.Redirect(w, r, op.AuthCallbackURL(p.op)(r.Context(), id), http.StatusFound)
}

// userinfo sets the user's claims the scopes ask for.
func (p *Provider) userinfo(u *oidc.UserInfo, scopes []string) {
	u.Subject = p.User.Subject
	if slices.Contains(scopes, oidc.ScopeEmail) {
		u.Email, u.EmailVerified = p.User.Email, true
	}
	if slices.Contains(scopes, oidc.ScopeProfile) {
		u.Name = p.User.Name
	}
}

// Deny makes the user deny (true) or approve (false) the browser
// sign-ins that follow.
func (p *Provider) Deny(deny bool) { p.deny.Store(deny) }

// ApproveDevice approves the pending device sign-in with userCode.
func (p *Provider) ApproveDevice(userCode string) error { return p.st.device(userCode, true) }

// DenyDevice denies the pending device sign-in with userCode.
func (p *Provider) DenyDevice(userCode string) error { return p.st.device(userCode, false) }

// RevokeAll forgets every refresh token issued: the next refresh gets
// invalid_grant, as after a sign-out elsewhere.
func (p *Provider) RevokeAll() { p.st.revokeAll() }

// Requests counts the requests to one of the provider's paths:
// /.well-known/openid-configuration, /oauth/token, /authorize,
// /device_authorization, /revoke, /keys.
func (p *Provider) Requests(path string) int64 {
	if c, ok := p.counts[path]; ok {
		return c.Load()
	}
	return 0
}

// Rotations counts refresh tokens used up by a refresh (each one
// replaced by a new one).
func (p *Provider) Rotations() int64 { return p.rotations.Load() }

// Revocations counts tokens revoked at /revoke.
func (p *Provider) Revocations() int64 { return p.revocations.Load() }

// DevicePolls counts the device grant's polls of the token endpoint.
func (p *Provider) DevicePolls() int64 { return p.devicePolls.Load() }

// RefreshTokens counts the refresh tokens the provider would accept.
func (p *Provider) RefreshTokens() int {
	p.st.mu.Lock()
	defer p.st.mu.Unlock()
	return len(p.st.refresh)
}

// Browse plays the person's browser for login.Config.OpenURL: it follows
// the authorization URL through the provider's sign-in to the redirect,
// and fails unless the last page answers 200. It returns when the page
// came.
func (p *Provider) Browse(ctx context.Context, authURL string) error {
	jar, _ := cookiejar.New(nil)
	// No connection is kept: a browser closed, nothing of it left behind.
	c := &http.Client{Jar: jar, Timeout: 30 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, authURL, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("logintest: the browser ended at %s with %s: %s", resp.Request.URL.Redacted(), resp.Status, body)
	}
	return nil
}

// Sign signs claims as an ID token with the provider's key (or, with
// stranger, a key of nobody's), for tests that forge one.
func (p *Provider) Sign(claims []byte, stranger bool) (string, error) {
	key := any(p.st.key)
	if stranger {
		s, err := newStorage(p)
		if err != nil {
			return "", err
		}
		key = s.key
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: p.st.kid}}, nil)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(claims)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}
