package tokenmgr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/redact"
)

// The optional methods of a [Config.Source]; both sources of this
// package have them all.

// ContextSource is a Source whose token requests honour a context. The
// Client calls TokenContext instead of Token, with a context that carries
// the refresh deadline ([Config.TokenTimeout] per attempt) and, as
// [oauth2.HTTPClient], the client for token requests
// ([Config.TokenHTTPClient]). Without it a call cannot be cancelled: it is
// abandoned at [Config.RefreshTimeout] and left running.
type ContextSource interface {
	TokenContext(ctx context.Context) (*oauth2.Token, error)
}

// Fingerprinter is a Source that identifies its configuration (token URL,
// client, scopes, never a secret). The fingerprint is stored with the
// token, and a stored token with another fingerprint is neither adopted
// nor overwritten: the Client fails with [ErrKeyInUse] instead.
type Fingerprinter interface {
	Fingerprint() string
}

// Describer is a Source that names its configuration for people (never a
// secret). Stored with the token, it is what [ErrKeyInUse] and
// tokenmgr list show.
type Describer interface {
	Description() string
}

// SecretHolder is a Source whose tokens carry secrets beyond the access,
// refresh and ID tokens (a signing key in an extra, say), or
// that holds secrets of its own: the Client asks it, so that no panic
// value or error shows them. Secrets returns those of tok, and with tok
// nil the Source's own.
type SecretHolder interface {
	Secrets(tok *oauth2.Token) []string
}

// RefreshTokenSetter is a Source that takes a refresh token found in the
// Store (rotated by this or another process), which wins over the seed it
// was built with.
type RefreshTokenSetter interface {
	SetRefreshToken(rt string)
}

// ClientCredentials returns a source that asks cfg's token endpoint for a
// new token on every call, with the client credentials grant. Unlike
// cfg.TokenSource it keeps no cache: caching is the Client's job, and a
// cache here would hand back the very token being replaced.
func ClientCredentials(cfg *clientcredentials.Config) oauth2.TokenSource {
	return &ccSource{cfg: cfg}
}

type ccSource struct {
	cfg   *clientcredentials.Config
	probe authProbe
}

// Fingerprint identifies the configuration, not its secret.
func (s *ccSource) Fingerprint() string {
	return fingerprint("client_credentials", s.cfg.TokenURL, s.cfg.ClientID, s.cfg.Scopes, s.cfg.EndpointParams)
}

// Description names the configuration for people, never its secret.
func (s *ccSource) Description() string {
	return describe("client_credentials", s.cfg.TokenURL, s.cfg.ClientID, s.cfg.Scopes)
}

func (s *ccSource) Token() (*oauth2.Token, error) { return s.TokenContext(context.Background()) }

// TokenContext fetches a token with ctx, which may carry [oauth2.HTTPClient].
func (s *ccSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	tok, err := s.probe.fetch(s.cfg.AuthStyle, func(style oauth2.AuthStyle) (*oauth2.Token, error) {
		c := &clientcredentials.Config{
			ClientID: s.cfg.ClientID, ClientSecret: s.cfg.ClientSecret, TokenURL: s.cfg.TokenURL,
			Scopes: s.cfg.Scopes, EndpointParams: s.cfg.EndpointParams, AuthStyle: style,
		}
		return c.Token(ctx)
	})
	if err != nil {
		r := &redact.Redactor{}
		s.addSecrets(r)
		return nil, redactError(err, r)
	}
	return tok, nil
}

func (s *ccSource) addSecrets(r *redact.Redactor) { r.AddClient(s.cfg.ClientID, s.cfg.ClientSecret) }

func (s *ccSource) tokenURL() string { return s.cfg.TokenURL }

// refreshTokenSource redeems a refresh token on every call and follows
// rotation (see RefreshToken).
type refreshTokenSource struct {
	cfg   *oauth2.Config
	probe authProbe
	mu    sync.Mutex
	rt    string
}

// RefreshToken returns a source that redeems refreshToken (the seed) at
// cfg's token endpoint on every call and follows rotation: when the
// endpoint returns a new refresh token, the next call uses it. A Client
// with a Store saves the rotated token before handing out the access
// token, and a refresh token found in the store replaces the seed (the
// source is a [RefreshTokenSetter]). Like [ClientCredentials] it keeps no
// cache: caching is the Client's job.
func RefreshToken(cfg *oauth2.Config, refreshToken string) oauth2.TokenSource {
	return &refreshTokenSource{cfg: cfg, rt: refreshToken}
}

// Token redeems the current refresh token.
func (s *refreshTokenSource) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext redeems the current refresh token with ctx.
func (s *refreshTokenSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock() // one redemption at a time: a rotating token is single-use
	if s.rt == "" {
		return nil, &TokenError{Code: "invalid_grant", Description: "no refresh token held"}
	}
	// A token with no access token is invalid, so the source this makes
	// goes straight to the endpoint; it keeps our refresh token when the
	// server sends none back.
	tok, err := s.probe.fetch(s.cfg.Endpoint.AuthStyle, func(style oauth2.AuthStyle) (*oauth2.Token, error) {
		c := &oauth2.Config{
			ClientID: s.cfg.ClientID, ClientSecret: s.cfg.ClientSecret, RedirectURL: s.cfg.RedirectURL,
			Scopes: s.cfg.Scopes, Endpoint: s.cfg.Endpoint,
		}
		c.Endpoint.AuthStyle = style
		return c.TokenSource(ctx, &oauth2.Token{RefreshToken: s.rt}).Token()
	})
	if err != nil {
		r := &redact.Redactor{}
		s.addSecretsLocked(r)
		return nil, redactError(err, r)
	}
	if tok.RefreshToken != "" {
		s.rt = tok.RefreshToken
	}
	return tok, nil
}

// authProbe finds how the token endpoint wants the client credentials
// when the configuration leaves it to detection (oauth2.AuthStyleAutoDetect),
// as x/oauth2 does (HTTP Basic first, then the form body), but keeps the
// answer that says what is wrong: x/oauth2 returns the second attempt's
// error, so a server that refused a scope (or a wrong secret) in answer to
// the first is reported by its complaint about the second's auth method.
// The style that worked is remembered for the source's later requests.
type authProbe struct{ learned atomic.Int32 } // an oauth2.AuthStyle; 0 until one worked

func (p *authProbe) fetch(configured oauth2.AuthStyle, fetch func(oauth2.AuthStyle) (*oauth2.Token, error)) (*oauth2.Token, error) {
	if configured != oauth2.AuthStyleAutoDetect {
		return fetch(configured)
	}
	if s := oauth2.AuthStyle(p.learned.Load()); s != oauth2.AuthStyleAutoDetect {
		return fetch(s)
	}
	tok, err := fetch(oauth2.AuthStyleInHeader)
	if err == nil {
		p.learned.Store(int32(oauth2.AuthStyleInHeader))
		return tok, nil
	}
	if !mayBeAuthMethod(err) {
		return nil, err // the server took the credentials and refused something else, or did not answer
	}
	tok, err2 := fetch(oauth2.AuthStyleInParams)
	switch {
	case err2 == nil:
		p.learned.Store(int32(oauth2.AuthStyleInParams))
		return tok, nil
	case mayBeAuthMethod(err2):
		return nil, err // refused both ways: the first answer says why
	}
	return nil, err2 // the body was the way, and the server refused something else
}

// mayBeAuthMethod reports whether a token endpoint's error may come from
// sending the client credentials in a way the server does not take, so
// that the other way is worth a try: invalid_client or invalid_request, or
// a 400 or 401 without an OAuth error code. A network error or an
// unusable answer is not: the other way cannot mend it.
func mayBeAuthMethod(err error) bool {
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) {
		return false
	}
	switch re.ErrorCode {
	case "invalid_client", "invalid_request":
		return true
	case "":
		return re.Response != nil && (re.Response.StatusCode == http.StatusBadRequest || re.Response.StatusCode == http.StatusUnauthorized)
	}
	return false
}

// redactError blanks the secrets a request presented, in every encoding
// the request used (see [redact.Redactor]), wherever the token endpoint's answer
// quotes them: some echo the bad refresh token in error_description, or
// the whole request in the body.
func redactError(err error, red *redact.Redactor) error {
	var re *oauth2.RetrieveError
	if err == nil || !errors.As(err, &re) {
		return err
	}
	r := *re
	if r.Response != nil {
		// The request it points to carries the credentials (an
		// Authorization header, a form body): keep only the answer.
		resp := *r.Response
		resp.Request, resp.Body, resp.TLS = nil, http.NoBody, nil
		resp.Header = resp.Header.Clone()
		for k, vs := range resp.Header {
			for i, v := range vs {
				vs[i] = red.Redact(v)
			}
			resp.Header[k] = vs
		}
		r.Response = &resp
	}
	r.ErrorCode = red.Redact(r.ErrorCode)
	r.ErrorDescription = red.Redact(r.ErrorDescription)
	r.ErrorURI = red.Redact(r.ErrorURI)
	r.Body = red.RedactBytes(r.Body)
	return &r
}

func (s *refreshTokenSource) addSecrets(r *redact.Redactor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addSecretsLocked(r)
}

func (s *refreshTokenSource) addSecretsLocked(r *redact.Redactor) {
	r.AddClient(s.cfg.ClientID, s.cfg.ClientSecret)
	r.Add(s.rt)
}

// SetRefreshToken replaces the refresh token to redeem next.
func (s *refreshTokenSource) SetRefreshToken(rt string) {
	s.mu.Lock()
	s.rt = rt
	s.mu.Unlock()
}

// Fingerprint identifies the configuration, not its secrets.
func (s *refreshTokenSource) Fingerprint() string {
	return fingerprint("refresh_token", s.cfg.Endpoint.TokenURL, s.cfg.ClientID, s.cfg.Scopes, nil)
}

// Description names the configuration for people, never its secrets.
func (s *refreshTokenSource) Description() string {
	return describe("refresh_token", s.cfg.Endpoint.TokenURL, s.cfg.ClientID, s.cfg.Scopes)
}

// describe is a configuration's description: the token URL without its
// query or user information, which might carry a secret.
func describe(grant, tokenURL, clientID string, scopes []string) string {
	where := "(unparsable URL)"
	if u, err := url.Parse(tokenURL); err == nil {
		where = (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
	}
	d := grant + " grant at " + where + ", client " + clientID
	if len(scopes) > 0 {
		d += ", scopes " + strings.Join(scopes, " ")
	}
	return display.Cut(display.OneLine(d), 300)
}

// fingerprint hashes what makes one token configuration differ from
// another, so a stored token is only adopted by the configuration that
// fetched it.
func fingerprint(grant, tokenURL, clientID string, scopes []string, params url.Values) string {
	sc := append([]string(nil), scopes...)
	sort.Strings(sc)
	h := sha256.New()
	for _, s := range []string{grant, tokenURL, clientID, strings.Join(sc, " "), params.Encode()} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

func (s *refreshTokenSource) tokenURL() string { return s.cfg.Endpoint.TokenURL }

// String never shows the refresh token.
func (s *refreshTokenSource) String() string { return "tokenmgr.RefreshTokenSource" }

// GoString keeps %#v from printing the refresh token field by field.
func (s *refreshTokenSource) GoString() string { return s.String() }
