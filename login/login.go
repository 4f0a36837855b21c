// Package login signs a person in, once, and keeps the result where a
// [tokenmgr.Client] serves it: the browser login (RFC 6749 authorization
// code with RFC 7636 PKCE, S256 always, and the RFC 8252 loopback
// redirect) and the device login (RFC 8628), with the endpoints from the
// issuer's OpenID discovery document and the ID token verified by
// github.com/coreos/go-oidc/v3.
//
//	cfg := login.Config{Issuer: "https://id.example.com", ClientID: "cli",
//		Scopes: []string{"openid", "email", "offline_access"}, Store: st}
//	if _, err := login.Browser(ctx, cfg); err != nil { … } // once
//	c, err := login.NewClient(ctx, cfg)                    // every run
//
// After the sign-in the Client does the rest as for any credential: it
// serves the saved access token, refreshes it with the saved refresh token
// before expiry, saves a rotated refresh token before it uses it, and
// shares one refresh among the processes using the Store. When nothing is
// saved, or the issuer refuses the refresh token (invalid_grant: revoked,
// expired, signed out elsewhere), its error matches
// [tokenmgr.ErrLoginRequired] and says to run "tokenmgr login".
//
// Importing the package also makes TOKENMGR_ISSUER usable with
// [tokenmgr.NewFromEnv] (see [tokenmgr.RegisterLogin]); the tokenmgr
// command imports it. It is its own module, so that go-oidc and go-jose
// reach only the programs that sign a person in.
//
// Nothing here prints, logs or puts in an error a token, code, verifier or
// client secret; the browser is shown a page saying the sign-in is done,
// never the code.
package login

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/damp"
	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
)

// Config says where a person signs in and where the result is kept.
type Config struct {
	// Issuer is the OpenID issuer: the endpoints come from its discovery
	// document ({Issuer}/.well-known/openid-configuration), whose
	// "issuer" must equal it exactly. https, or http to loopback.
	Issuer string
	// Endpoint is used instead of discovery when Issuer is empty
	// (DeviceAuthURL for [Device]). Without an issuer an ID token cannot
	// be verified, so none is kept.
	Endpoint oauth2.Endpoint
	ClientID string
	// ClientSecret is empty for a public client (most command-line
	// programs): the client ID then goes in the request body; a secret
	// goes in an HTTP Basic header.
	ClientSecret string
	// Scopes asked for; empty means [DefaultScopes] with an Issuer, none
	// with an Endpoint. With "openid" the ID token is verified; most
	// issuers give a refresh token only with "offline_access".
	Scopes []string
	// ListenAddr is the browser login's loopback listener. Default
	// "127.0.0.1:0" (a free port); an address that is not loopback is
	// refused.
	ListenAddr string
	// OpenURL opens the authorization URL in a browser. Default: $BROWSER,
	// else the platform's opener. When it fails, the URL is printed to
	// Prompt for the person to open, and the login keeps listening.
	OpenURL func(ctx context.Context, url string) error
	// OnDeviceCode shows the person where to go and what code to enter.
	// Default: prints the verification URI (and the complete one, when
	// given) and the user code to Prompt. It must not block: the sign-in
	// polls once it returns, and fails if it has not by the time ctx ends
	// or the code expires.
	OnDeviceCode func(*oauth2.DeviceAuthResponse)
	// Store keeps the sign-in. Nil keeps it in memory only: [Browser] and
	// [Device] return the token, and [NewClient] has nothing to serve.
	Store store.Store
	// Key names the credential in Store. Default "default". A credential
	// another configuration saved under it is not replaced: the sign-in's
	// error then matches [tokenmgr.ErrKeyInUse].
	Key string
	// HTTPClient makes the requests to the issuer. Default
	// [http.DefaultClient].
	HTTPClient *http.Client
	// Prompt receives what the person must read: the URL to open when no
	// browser opens, the device code. Default os.Stderr. Never a secret.
	Prompt io.Writer
}

// DefaultScopes are asked for when Config.Scopes is empty and an Issuer
// is set: who signed in
// (an ID token with the email and name "tokenmgr status" shows) and a
// refresh token.
var DefaultScopes = []string{"openid", "email", "profile", "offline_access"}

// ErrDenied is matched by the error of a sign-in the person or the server
// refused (access_denied, or another error in the redirect); the error
// carries the server's description.
var ErrDenied = errors.New("login: sign-in was denied")

// ErrNotLoopback is matched when ListenAddr, or a plain-http issuer or
// endpoint, is not on loopback.
var ErrNotLoopback = errors.New("login: not a loopback address")

func (c *Config) key() string {
	if c.Key == "" {
		return tokenmgr.DefaultKey
	}
	return c.Key
}

func (c *Config) prompt() io.Writer {
	if c.Prompt == nil {
		return os.Stderr
	}
	return c.Prompt
}

// httpClient is Config.HTTPClient (http.DefaultClient when nil), copied
// with a CheckRedirect that refuses a redirect to another origin (scheme,
// host, port): a 307 or 308 re-posts its body, so the code and verifier,
// device code, refresh token or client secret would go to a host they were
// not meant for. The user's own CheckRedirect still runs for redirects
// that stay on the origin.
func (c *Config) httpClient() *http.Client {
	user := c.HTTPClient
	if user == nil {
		user = http.DefaultClient
	}
	hc := *user
	next := user.CheckRedirect
	hc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > 0 && !sameOrigin(via[0].URL, req.URL) {
			return fmt.Errorf("%w: %s redirected to %s", errCrossOrigin, display.URL(via[0].URL.Scheme+"://"+via[0].URL.Host), display.URL(req.URL.Scheme+"://"+req.URL.Host))
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects") // net/http's default
		}
		return nil
	}
	return &hc
}

// errCrossOrigin is wrapped when the issuer redirected a request to
// another origin.
var errCrossOrigin = errors.New("login: not following a redirect to another origin")

// sameOrigin reports whether a and b share scheme, host and port (RFC 6454).
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && damp.Port(a) == damp.Port(b)
}

// context puts the HTTP client where x/oauth2 and go-oidc look for it.
func (c *Config) context(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, c.httpClient())
}

func (c *Config) scopes() []string {
	if len(c.Scopes) == 0 && c.Issuer != "" {
		return DefaultScopes
	}
	return c.Scopes
}

func (c *Config) wantsIDToken() bool { return slices.Contains(c.scopes(), "openid") }

// authStyle is set, never detected: x/oauth2's detection tries a request
// twice when the first fails, so every pending device poll would go twice
// and break the server's interval.
func (c *Config) authStyle() oauth2.AuthStyle {
	if c.ClientSecret == "" {
		return oauth2.AuthStyleInParams
	}
	return oauth2.AuthStyleInHeader
}

func (c *Config) check() error {
	if c.ClientID == "" {
		return errors.New("login: Config.ClientID is empty")
	}
	if c.Issuer == "" && c.Endpoint.TokenURL == "" {
		return errors.New("login: Config has neither an Issuer nor an Endpoint.TokenURL")
	}
	if c.Issuer != "" {
		if err := checkURL("Issuer", c.Issuer); err != nil {
			return err
		}
	}
	return nil
}

// fingerprint identifies the sign-in's configuration (issuer or token URL,
// client, scopes; never a secret): it is saved with the token, and the
// Client of another configuration does not adopt it.
func (c *Config) fingerprint() string {
	where := c.Issuer
	if where == "" {
		where = c.Endpoint.TokenURL
	}
	sc := slices.Clone(c.scopes())
	slices.Sort(sc)
	h := sha256.New()
	for _, s := range []string{"login", where, c.ClientID, strings.Join(sc, " ")} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// oauth2Config is the x/oauth2 configuration for ep.
func (c *Config) oauth2Config(ep *endpoints, redirectURL string) *oauth2.Config {
	e := ep.Endpoint
	e.AuthStyle = c.authStyle()
	return &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Endpoint: e, RedirectURL: redirectURL, Scopes: c.scopes()}
}

// save keeps tok under Store/Key, after everything about it was checked:
// a failed or cancelled login never reaches here, so it never overwrites
// what is stored.
func (c *Config) save(ctx context.Context, tok *oauth2.Token, obtained time.Time) error {
	if c.Store == nil {
		return nil
	}
	// As the Client does (tokenmgr.ErrKeyInUse): what another
	// configuration saved under the key (AWS credentials, a service's
	// token, a sign-in at another issuer or with other scopes) is not
	// replaced, or it is lost and its Client stops with ErrKeyInUse.
	// A malformed record is replaced, as the Client replaces it; one of a
	// newer tokenmgr is not.
	//
	// Under the store's lock, as a Client's refresh runs: a refresh in
	// another process between its read and its save would otherwise save
	// the old sign-in's tokens over this one.
	if l, ok := c.Store.(store.Locker); ok {
		unlock, err := l.Lock(ctx, c.key())
		if err != nil {
			return fmt.Errorf("login: signed in, but locking credential %q failed: %w", c.key(), err)
		}
		defer unlock()
	}
	old, err := record.Load(ctx, c.Store, c.key())
	if err != nil && (!errors.Is(err, record.ErrFormat) || errors.Is(err, record.ErrNewer)) {
		return fmt.Errorf("login: signed in, but credential %q could not be read, so it was not overwritten (tokenmgr logout deletes it): %w", c.key(), err)
	}
	if err := c.foreign(old, "nothing was overwritten: sign in under another key (TOKENMGR_KEY), or delete the stored credential (tokenmgr logout)"); err != nil {
		return err
	}
	r := record.FromToken(tok, obtained)
	r.Source = c.fingerprint()
	b, err := r.Encode()
	if err != nil {
		return fmt.Errorf("login: encoding the sign-in: %w", err)
	}
	if err := c.Store.Save(ctx, c.key(), b); err != nil {
		return fmt.Errorf("login: signed in, but saving credential %q failed: %w", c.key(), err)
	}
	return nil
}

// foreign returns an error wrapping [tokenmgr.ErrKeyInUse] when r was
// saved under the key by another configuration (the Client's rule: a
// record naming no configuration is taken as ours); then says what was
// not done.
func (c *Config) foreign(r *record.Record, then string) error {
	if r == nil || r.Source == "" || r.Source == c.fingerprint() {
		return nil
	}
	return fmt.Errorf("%w: %q in %s holds %s of another configuration (%s), not this sign-in's (fingerprint %s); %s",
		tokenmgr.ErrKeyInUse, c.key(), display.StoreName(c.Store), r.Kind(), r.Configuration(), c.fingerprint(), then)
}

// finish verifies the ID token the token response carries and saves the
// sign-in.
func (c *Config) finish(ctx context.Context, ep *endpoints, tok *oauth2.Token, nonce string, obtained time.Time) (*oauth2.Token, error) {
	tok, err := c.checkIDToken(ctx, ep, tok, nonce)
	if err != nil {
		return nil, err
	}
	if err := c.save(ctx, tok, obtained); err != nil {
		return nil, err
	}
	return tok, nil
}

// requiredError is a sign-in that only the person can mend: it matches
// [tokenmgr.ErrLoginRequired] and names the command to run.
type requiredError struct {
	why string
	err error
}

func (e *requiredError) Error() string {
	return "tokenmgr: sign-in required (" + e.why + "): run tokenmgr login"
}

func (e *requiredError) Is(target error) bool { return target == tokenmgr.ErrLoginRequired }
func (e *requiredError) Unwrap() error        { return e.err }
