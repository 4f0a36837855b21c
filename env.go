package tokenmgr

import (
	"context"
	"io"
	"net/url"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/store"
)

// NewFromEnv returns a Client configured from the TOKENMGR_* variables:
//
//	TOKENMGR_TOKEN_URL              token endpoint (https, or http to loopback)
//	TOKENMGR_ISSUER                 OpenID issuer a person signs in at (tokenmgr login)
//	TOKENMGR_CLIENT_ID              client ID
//	TOKENMGR_CLIENT_SECRET          client secret (or _CLIENT_SECRET_FILE: a file holding it)
//	TOKENMGR_SCOPES                 scopes, separated by spaces or commas
//	TOKENMGR_AUDIENCE               sent as "audience" with the client credentials grant
//	TOKENMGR_AUTH_STYLE             header | params | auto (default auto)
//	TOKENMGR_REFRESH_TOKEN          seed for the refresh_token grant; a stored one wins
//	TOKENMGR_ACCESS_TOKEN           a static token, never refreshed (no TOKEN_URL needed)
//	TOKENMGR_KEY                    credential name in the store (default "default")
//	TOKENMGR_REFRESH_BEFORE         Go duration, e.g. 5m (default: scaled to the lifetime)
//	TOKENMGR_EXPIRY_DELTA           Go duration (default: scaled to the lifetime)
//	TOKENMGR_ALLOWED_HOSTS          hosts the token may go to, separated by spaces or commas
//	TOKENMGR_ALLOW_INSECURE_HTTP    true to allow plain http to hosts other than loopback
//	TOKENMGR_STORE                  auto | keyring | file | memory | redis (default auto)
//	TOKENMGR_STORE_PATH             the encrypted file (default under os.UserConfigDir)
//	TOKENMGR_STORE_PASSPHRASE       its passphrase (or _STORE_PASSPHRASE_FILE); with redis, the fleet's
//	TOKENMGR_KEY_CACHE              on | off (default on): keep the key derived from the passphrase in the kernel keyring
//	TOKENMGR_REDIS_URL              with TOKENMGR_STORE=redis: redis:// or rediss:// (Sentinel, Cluster: README)
//
// With TOKENMGR_REFRESH_TOKEN the refresh_token grant is used, otherwise
// client credentials; with TOKENMGR_ISSUER the credential a person signed
// in to (package login must be imported, see [RegisterLogin]). auto uses
// the OS keyring when one answers, else the encrypted file when a
// passphrase is set, and never plain text; redis needs package
// store/redisstore imported (see envconfig.RegisterStore). A bad value is
// an *envconfig.Error naming the variable; a secret is never echoed.
// Package envconfig reads the variables (envconfig.Read) for programs that
// show, check or extend the configuration.
//
// Each adjust func, in order, may change the Config before New: set a
// Logger, OnRefresh or an Observer (oteltokenmgr.Instrumented() reports
// to OpenTelemetry). A Store it sets replaces the one the variables
// name, which is then closed; the Store NewFromEnv opened is the
// Client's, closed by Close.
func NewFromEnv(adjust ...func(*Config)) (*Client, error) {
	e, err := envconfig.Read(nil, envconfig.NeedCredential)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := ConfigFromEnv(ctx, e)
	if err != nil {
		return nil, err
	}
	opened := cfg.Store
	for _, f := range adjust {
		f(&cfg)
	}
	// The store was opened here, so it is ours to close: on failure now,
	// else with the Client (a Redis store holds a connection pool).
	closer, _ := opened.(io.Closer)
	if cfg.Store != opened && closer != nil {
		closer.Close() // replaced: nobody uses it
		closer = nil
	}
	c, err := New(cfg)
	if err != nil {
		if closer != nil {
			closer.Close()
		}
		return nil, err
	}
	c.ownedStore = closer
	return c, nil
}

// ConfigFromEnv returns the Config the variables e holds describe (e from
// envconfig.Read), opening the store they name: what [NewFromEnv] builds
// its Client from, for a program that changes it first or needs it
// otherwise (awscreds, the tokenmgr command).
func ConfigFromEnv(ctx context.Context, e *envconfig.Env) (Config, error) {
	var st store.Store
	if e.Issuer != "" {
		if _, err := loginSource(e); err != nil {
			return Config{}, err
		}
	}
	if e.TokenURL != "" || e.Issuer != "" {
		// A static token is given afresh each run: nothing to keep, and a
		// kept one would outlive a change of TOKENMGR_ACCESS_TOKEN.
		var err error
		if st, err = e.OpenStore(ctx); err != nil {
			return Config{}, err
		}
	}
	return Config{
		Source:            SourceFromEnv(e),
		Store:             st,
		Key:               e.Key,
		RefreshBefore:     e.RefreshBefore,
		ExpiryDelta:       e.ExpiryDelta,
		AllowedHosts:      e.AllowedHosts,
		AllowInsecureHTTP: e.AllowInsecureHTTP,
	}, nil
}

// SourceFromEnv returns the source the variables e holds describe
// (e from envconfig.Read): static, refresh token, client credentials, or
// with TOKENMGR_ISSUER the signed-in credential (whose source the login
// package provides; see [RegisterLogin]).
func SourceFromEnv(e *envconfig.Env) oauth2.TokenSource {
	switch {
	case e.Issuer != "":
		src, err := loginSource(e)
		if err != nil {
			return errSource{err}
		}
		return src
	case e.TokenURL == "":
		return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: e.AccessToken, TokenType: "Bearer"})
	case e.RefreshToken != "":
		return RefreshToken(&oauth2.Config{
			ClientID: e.ClientID, ClientSecret: e.ClientSecret, Scopes: e.Scopes,
			Endpoint: oauth2.Endpoint{TokenURL: e.TokenURL, AuthStyle: e.AuthStyle},
		}, e.RefreshToken)
	}
	cc := &clientcredentials.Config{
		ClientID: e.ClientID, ClientSecret: e.ClientSecret, TokenURL: e.TokenURL,
		Scopes: e.Scopes, AuthStyle: e.AuthStyle,
	}
	if e.Audience != "" {
		cc.EndpointParams = url.Values{"audience": {e.Audience}}
	}
	return ClientCredentials(cc)
}
