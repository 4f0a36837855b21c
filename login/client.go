package login

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/envconfig"
)

func init() {
	tokenmgr.RegisterLogin(func(e *envconfig.Env) oauth2.TokenSource {
		return newSource(Config{Issuer: e.Issuer, ClientID: e.ClientID, ClientSecret: e.ClientSecret, Scopes: e.Scopes, Key: e.Key})
	})
}

// NewClient returns a Client serving the signed-in credential saved under
// cfg.Store/cfg.Key. It serves the stored token while it is fresh (no
// request at start) and refreshes it with the stored refresh token, at
// the endpoints discovered when the first refresh needs them. With a nil
// Store its error matches [tokenmgr.ErrLoginRequired]; with nothing
// stored, the Client's first Token error does.
func NewClient(ctx context.Context, cfg Config) (*tokenmgr.Client, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if cfg.Store == nil {
		return nil, &requiredError{why: "no Store to keep a sign-in in"}
	}
	return tokenmgr.New(tokenmgr.Config{
		Source:          newSource(cfg),
		Store:           cfg.Store,
		Key:             cfg.key(),
		TokenHTTPClient: cfg.HTTPClient,
	})
}

// source redeems the signed-in refresh token: the Client hands it the
// stored one (SetRefreshToken) and saves what it returns. The endpoints
// are discovered on the first refresh, so a program serving a fresh
// stored token makes no request to the issuer.
type source struct {
	cfg Config
	fp  string

	mu sync.Mutex // one redemption at a time: a rotating refresh token is single-use
	rt string
	ep *endpoints
}

func newSource(cfg Config) *source {
	return &source{cfg: cfg, fp: cfg.fingerprint()}
}

// Fingerprint identifies the sign-in's configuration; the login saves it
// with the token, so the Client adopts what Browser or Device saved.
func (s *source) Fingerprint() string { return s.fp }

// SetRefreshToken takes the refresh token found in the Store.
func (s *source) SetRefreshToken(rt string) {
	s.mu.Lock()
	s.rt = rt
	s.mu.Unlock()
}

func (s *source) Token() (*oauth2.Token, error) { return s.TokenContext(context.Background()) }

// TokenContext redeems the refresh token. With none held, or when the
// token endpoint answers invalid_grant, the error matches
// [tokenmgr.ErrLoginRequired].
func (s *source) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rt == "" {
		return nil, &requiredError{why: fmt.Sprintf("nothing signed in as credential %q", s.cfg.key())}
	}
	if err := s.cfg.check(); err != nil {
		return nil, err
	}
	cfg := s.cfg
	if hc, ok := ctx.Value(oauth2.HTTPClient).(*http.Client); ok && hc != nil {
		cfg.HTTPClient = hc // the Client's: it keeps the secrets within the token URL's origin
	}
	if s.ep == nil {
		ep, err := resolve(ctx, &cfg)
		if err != nil {
			return nil, err
		}
		s.ep = ep
	}
	// RefreshToken's source honours a context (a ContextSource).
	src := tokenmgr.RefreshToken(cfg.oauth2Config(s.ep, ""), s.rt).(tokenmgr.ContextSource)
	tok, err := src.TokenContext(ctx)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.ErrorCode == "invalid_grant" {
			te := &tokenmgr.TokenError{Code: "invalid_grant", Description: printable(re.ErrorDescription, 200), StatusCode: statusOf(re), Err: err}
			return nil, &requiredError{why: "the issuer refused the saved sign-in: " + strings.TrimPrefix(te.Error(), "tokenmgr: "), err: te}
		}
		return nil, err
	}
	if tok, err = cfg.checkIDToken(ctx, s.ep, tok, ""); err != nil {
		return nil, err
	}
	if tok.RefreshToken != "" {
		s.rt = tok.RefreshToken
	}
	return tok, nil
}

// String never shows the refresh token.
func (s *source) String() string { return "login.source" }

// GoString keeps %#v from printing the refresh token field by field.
func (s *source) GoString() string { return s.String() }
