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

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// ClientCredentials returns a source that asks cfg's token endpoint for a
// new token on every call, with the client credentials grant. Unlike
// cfg.TokenSource it keeps no cache: caching is the Client's job, and a
// cache here would hand back the very token being replaced.
func ClientCredentials(cfg *clientcredentials.Config) oauth2.TokenSource {
	return &ccSource{cfg: cfg}
}

type ccSource struct{ cfg *clientcredentials.Config }

// Fingerprint identifies the configuration, not its secret.
func (s *ccSource) Fingerprint() string {
	return fingerprint("client_credentials", s.cfg.TokenURL, s.cfg.ClientID, s.cfg.Scopes, s.cfg.EndpointParams)
}

func (s *ccSource) Token() (*oauth2.Token, error) { return s.TokenContext(context.Background()) }

// TokenContext fetches a token with ctx, which may carry oauth2.HTTPClient.
func (s *ccSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	tok, err := s.cfg.Token(ctx)
	if err != nil {
		r := &Redactor{}
		s.addSecrets(r)
		return nil, redactError(err, r)
	}
	return tok, nil
}

func (s *ccSource) addSecrets(r *Redactor) { r.AddClient(s.cfg.ClientID, s.cfg.ClientSecret) }

// RefreshTokenSource is a source that redeems a refresh token on every
// call and follows rotation: when the endpoint returns a new refresh token,
// the next call uses it. A Client with a Store saves the rotated token
// before handing out the access token, and a refresh token found in the
// store replaces the seed.
type RefreshTokenSource struct {
	cfg *oauth2.Config
	mu  sync.Mutex
	rt  string
}

// RefreshToken returns a source that redeems refreshToken (the seed) at
// cfg's token endpoint.
func RefreshToken(cfg *oauth2.Config, refreshToken string) *RefreshTokenSource {
	return &RefreshTokenSource{cfg: cfg, rt: refreshToken}
}

// Token redeems the current refresh token.
func (s *RefreshTokenSource) Token() (*oauth2.Token, error) {
	return s.TokenContext(context.Background())
}

// TokenContext redeems the current refresh token with ctx.
func (s *RefreshTokenSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock() // one redemption at a time: a rotating token is single-use
	if s.rt == "" {
		return nil, &TokenError{Code: "invalid_grant", Description: "no refresh token held"}
	}
	// A token with no access token is invalid, so the source this makes
	// goes straight to the endpoint; it keeps our refresh token when the
	// server sends none back.
	tok, err := s.cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: s.rt}).Token()
	if err != nil {
		r := &Redactor{}
		s.addSecretsLocked(r)
		return nil, redactError(err, r)
	}
	if tok.RefreshToken != "" {
		s.rt = tok.RefreshToken
	}
	return tok, nil
}

// redactError blanks the secrets a request presented, in every encoding
// the request used (see [Redactor]), wherever the token endpoint's answer
// quotes them: some echo the bad refresh token in error_description, or
// the whole request in the body.
func redactError(err error, red *Redactor) error {
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

func (s *RefreshTokenSource) addSecrets(r *Redactor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addSecretsLocked(r)
}

func (s *RefreshTokenSource) addSecretsLocked(r *Redactor) {
	r.AddClient(s.cfg.ClientID, s.cfg.ClientSecret)
	r.Add(s.rt)
}

// SetRefreshToken replaces the refresh token to redeem next.
func (s *RefreshTokenSource) SetRefreshToken(rt string) {
	s.mu.Lock()
	s.rt = rt
	s.mu.Unlock()
}

// Fingerprint identifies the configuration, not its secrets.
func (s *RefreshTokenSource) Fingerprint() string {
	return fingerprint("refresh_token", s.cfg.Endpoint.TokenURL, s.cfg.ClientID, s.cfg.Scopes, nil)
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

// String never shows the refresh token.
func (s *RefreshTokenSource) String() string { return "tokenmgr.RefreshTokenSource" }
