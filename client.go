package tokenmgr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/damp"
	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/internal/wire"
	"github.com/tokenmgr/tokenmgr/store"
)

// DefaultKey is the credential name used when [Config.Key] is empty.
const DefaultKey = envconfig.DefaultKey

// Config configures a Client. Only Source is required; the zero value of
// every other field is a sensible default.
type Config struct {
	// Source is where fresh tokens come from. Each call to it should reach
	// the token endpoint: use [ClientCredentials] or [RefreshToken] rather
	// than a config's TokenSource method, whose cache hands back the token
	// being replaced (see [ErrSameToken]). A Source may also implement
	// [ContextSource], [Fingerprinter], [Describer] and [RefreshTokenSetter].
	Source oauth2.TokenSource

	// Store keeps the token (and a rotated refresh token) across restarts.
	// Nil keeps tokens in memory only. A Store that implements [store.Locker]
	// makes processes sharing it refresh once between them.
	Store store.Store

	// Key names the credential in Store. Default "default".
	Key string

	// RefreshBefore is how long before expiry a background refresh starts,
	// and ExpiryDelta how long before expiry a token is no longer used.
	// Zero picks both from the token's lifetime; see [Client].
	RefreshBefore time.Duration
	ExpiryDelta   time.Duration

	// RefreshTimeout bounds one refresh, all its attempts included.
	// Default 1 minute. A refresh still running a second after it (a
	// Source or Store that ignores its context) is abandoned: its callers
	// get an error wrapping [context.DeadlineExceeded], and the next call
	// starts a new refresh.
	RefreshTimeout time.Duration

	// TokenTimeout bounds one request to the token endpoint. Default 30s.
	TokenTimeout time.Duration

	// TokenHTTPClient is the client a [ContextSource] uses to reach the
	// token endpoint (put in the context as [oauth2.HTTPClient]). Default
	// [http.DefaultClient]. The Client uses a copy that never follows a
	// redirect to another origin: the client credentials go nowhere else.
	TokenHTTPClient *http.Client

	// Logger receives refreshes, retries and failures. It never receives a
	// token or secret. Nil discards.
	Logger *slog.Logger

	// OnRefresh, when set, is called after every refresh attempt, from the
	// goroutine that made it. It must not block. A panic in it is
	// returned to the refresh's callers as a *[PanicError].
	OnRefresh func(RefreshEvent)

	// OnRetry, when set, is called each time a token request fails and
	// the refresh will try again, before it waits, so that a program a
	// person waits for can say why. It must not block nor call Token. The
	// background refresh does not call it. A panic in it ends the refresh,
	// whose callers get it as a *[PanicError].
	OnRetry func(RetryEvent)

	// RefusedAttempts, when positive, is how many token requests whose
	// connection was refused (a wrong port, a stopped server) a refresh
	// makes before it fails, so a mistyped port fails at once. Zero retries
	// a refused connection until RefreshTimeout, as other transient
	// failures are: a long-running program rides out a server restart.
	RefusedAttempts int

	// AllowedHosts, when set, lists the only hosts the transport sends the
	// token to: exact names, or "*.example.com" for any subdomain. Requests
	// to others fail with [ErrHostNotAllowed].
	AllowedHosts []string

	// AllowInsecureHTTP lets the transport send the token over plain http
	// to hosts other than loopback. Leave it off outside tests. It never
	// lets the client secret or a refresh token go over plain http: New
	// refuses a [ClientCredentials] or [RefreshToken] source whose token
	// URL is http to a host other than loopback.
	AllowInsecureHTTP bool

	// InvalidTokenCodes adds error codes that mean "invalid token" to the
	// built-in list (see [classify.Classifier]).
	InvalidTokenCodes []string

	// Attach puts the token on an outgoing request. Nil sets the
	// Authorization header to "<type> <token>". A request signer goes here.
	Attach func(req *http.Request, tok *oauth2.Token) error

	// Observer, when set, receives refreshes, token requests, rejections
	// and store errors as they happen, for metrics and traces (package
	// oteltokenmgr sets one up in a line). Nil costs nothing.
	Observer *Observer
}

// RefreshReason says why a refresh ran, in a [RefreshEvent].
type RefreshReason string

// Refresh reasons. Their values are stable: logs and metrics may use them.
const (
	// ReasonInitial: there was no token yet (or none since a failure).
	ReasonInitial RefreshReason = "initial"
	// ReasonEarly: the background refresh of a stale token, still served
	// meanwhile (see the package doc on Refresh).
	ReasonEarly RefreshReason = "early"
	// ReasonExpired: a caller needed a token and the one in service had
	// expired (its last ExpiryDelta).
	ReasonExpired RefreshReason = "expired"
	// ReasonInvalid: a server rejected the token in service, or
	// [Client.Invalidate] dropped it.
	ReasonInvalid RefreshReason = "invalid"
)

// RefreshEvent describes one refresh attempt, for [Config.OnRefresh].
type RefreshEvent struct {
	Key      string
	Reason   RefreshReason // [ReasonInitial], [ReasonEarly], [ReasonExpired] or [ReasonInvalid]
	Expiry   time.Time     // the new token's expiry, zero on failure or for no expiry
	Stored   bool          // the token came from the store (another process refreshed)
	StoreErr error         // the store could not be read or written; the token was not persisted
	Err      error
	Duration time.Duration
	Attempts int // requests made to the Source; 0 when none was (the token came from the store)
}

// RetryEvent describes a failed token request that the refresh will make
// again, for [Config.OnRetry].
type RetryEvent struct {
	Key     string        // the credential's Config.Key
	Attempt int           // the request that failed, counted from 1
	Wait    time.Duration // how long the refresh waits before the next
	// Err is why it failed; errors.As finds a *[TokenError] in it (whose
	// message never holds a secret) with the network error or the
	// endpoint's answer.
	Err error
}

// Stats counts what a Client did, for monitoring and tests.
type Stats struct {
	Fetches       int64 // successful token requests to the Source
	FetchErrors   int64 // failed token requests
	StoreLoads    int64 // tokens taken from the Store instead of the Source
	StoreErrors   int64 // refreshes during which the Store could not be read or written
	Invalidations int64 // tokens dropped after the server rejected them
	Replays       int64 // requests replayed with a fresh token
}

// Client hands out valid tokens, refreshing them ahead of expiry. It is
// safe for concurrent use. Close it to stop background refreshes.
//
// A token fetched with lifetime L is, at any moment, in one of three
// states:
//
//	fresh    more than refreshBefore left   served from memory, no lock
//	stale    less than refreshBefore left   served at once; one background refresh starts
//	expired  less than expiryDelta left     callers wait for one shared refresh (or leave on their ctx)
//
// Left at zero, [Config.RefreshBefore] is min(L/4, 5m) plus up to 10%
// jitter, so a fleet does not refresh in lockstep, and [Config.ExpiryDelta]
// is min(L/20, 10s): a one-hour token is refreshed 5 to 5.5 minutes early,
// a four-second token a second early. A token without expiry is served
// until a server rejects it. With a [store.Locker] the refresh runs under
// the store's lock and first re-reads the store, so one process refreshes
// and the others adopt its token; a rotated refresh token is saved before
// the new access token is handed out.
//
// A panic in code the Client runs for its callers (the Source, the Store,
// [Config.OnRefresh], [Config.Attach]) is returned to them as a
// *[PanicError], and every wait is bounded by [Config.RefreshTimeout].
type Client struct {
	engine[*oauth2.Token]                                          // the token in service and its refreshes
	send                  *sendRules[*oauth2.Token]                // the transport's rules: hosts, classifier, damping
	attach                func(*http.Request, *oauth2.Token) error // Config.Attach
	// ownedStore is the store NewFromEnv opened for this Client; Close
	// closes it. A Store passed in Config stays the caller's to close.
	ownedStore io.Closer
}

// New returns a Client. It fails only when the configuration is unusable.
func New(cfg Config) (*Client, error) {
	if cfg.Source == nil {
		return nil, errors.New("tokenmgr: Config.Source is nil")
	}
	if err := checkDurations(&cfg); err != nil {
		return nil, err
	}
	// The sources of this package send the client secret and refresh token
	// to their token URL: the rule TOKENMGR_TOKEN_URL follows holds from Go
	// too (AllowInsecureHTTP is the transport's, never the secret's).
	if s, ok := cfg.Source.(interface{ tokenURL() string }); ok {
		if u, err := url.Parse(s.tokenURL()); err == nil && wire.Cleartext(u) {
			return nil, fmt.Errorf("tokenmgr: Config.Source's token URL %s: %w", display.Cut(display.URL(s.tokenURL()), 200), wire.ErrCleartextTokenURL)
		}
	}
	k := &bearerKind{src: cfg.Source, strict: cfg.Attach == nil, tokenHTTP: tokenClient(cfg.TokenHTTPClient)}
	c := &Client{attach: cfg.Attach}
	var err error
	if c.send, err = newSendRules[*oauth2.Token](&cfg); err != nil {
		return nil, err
	}
	c.engine.init(k, &cfg, k.fingerprint(), k.description())
	return c, nil
}

// init sets c up to keep credentials of kind k by cfg, which New and
// NewCache have checked.
func (c *engine[T]) init(k kind[T], cfg *Config, fingerprint, description string) {
	c.kind = k
	c.st = cfg.Store
	c.key = cfg.Key
	c.log = cfg.Logger
	c.onEvent, c.onRetry = cfg.OnRefresh, cfg.OnRetry
	c.refreshBefore, c.expiryDelta = cfg.RefreshBefore, cfg.ExpiryDelta
	c.refreshTimeout, c.tokenTimeout = cfg.RefreshTimeout, cfg.TokenTimeout
	c.maxRefused = cfg.RefusedAttempts
	c.now, c.sleep, c.jitter = engineClock(), sleepCtx, randJitter
	c.failCool = damp.NewCooldown(time.Second, 30*time.Second)
	c.fingerprint, c.description = fingerprint, description
	if c.key == "" {
		c.key = DefaultKey
	}
	if cfg.Observer != nil {
		o := *cfg.Observer // the caller's may change; ours does not
		c.obs = &o
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.refreshTimeout == 0 {
		c.refreshTimeout = time.Minute
	}
	if c.tokenTimeout == 0 {
		c.tokenTimeout = 30 * time.Second
	}
	c.log = c.log.With("credential", c.key)
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.drain, c.stopDrain = context.WithCancel(context.Background())
}

// checkDurations checks cfg's durations and counts, for New and NewCache.
func checkDurations(cfg *Config) error {
	if cfg.RefreshBefore < 0 || cfg.ExpiryDelta < 0 || cfg.RefreshTimeout < 0 || cfg.TokenTimeout < 0 {
		return errors.New("tokenmgr: negative duration in Config")
	}
	if cfg.RefusedAttempts < 0 {
		return errors.New("tokenmgr: negative Config.RefusedAttempts")
	}
	return nil
}

// Token returns a valid token, fetching or refreshing it as needed. A
// token in service is returned without taking a lock. The returned token is
// shared: do not modify it.
func (c *Client) Token(ctx context.Context) (*oauth2.Token, error) {
	e, err := c.entry(ctx)
	if err != nil {
		return nil, err
	}
	return e.tok, nil
}

// TokenSource returns the Client as an [oauth2.TokenSource], for libraries
// that take one. Its Token method uses context.Background.
//
// Such libraries usually cache the token (oauth2.NewClient wraps the source
// in [oauth2.ReuseTokenSource], which asks again 10 seconds before Expiry).
// So that they come back in time for the early refresh, the tokens this
// source returns carry an Expiry moved up to 10 seconds after the Client's
// refresh window opens. They do not replay a request a server rejected:
// use Transport or HTTPClient for that. The source also has a method
// Invalidate(*oauth2.Token), for a consumer told that a token it got was
// refused (package awscreds calls it when STS refuses a web identity).
func (c *Client) TokenSource() oauth2.TokenSource { return clientSource{c} }

type clientSource struct{ c *Client }

func (s clientSource) Token() (*oauth2.Token, error) {
	e, err := s.c.entry(context.Background())
	if err != nil {
		return nil, err
	}
	return e.early, nil
}

// Invalidate drops tok, one this source handed out, as Client.Invalidate
// does: a consumer that learns its token was refused (awscreds, when STS
// refuses a web identity token) gets a new one at the next Token.
func (s clientSource) Invalidate(tok *oauth2.Token) { s.c.Invalidate(tok) }

// HTTPClient returns an *http.Client whose transport attaches the token to
// every request over [http.DefaultTransport].
func (c *Client) HTTPClient() *http.Client {
	return &http.Client{Transport: c.Transport(nil)}
}

// Invalidate drops tok if it is the token in service, so the next call
// fetches a new one. Use it when a response the transport does not see
// says the token was rejected.
func (c *Client) Invalidate(tok *oauth2.Token) {
	if e := c.cur.Load(); e != nil && tok != nil && e.id == tok.AccessToken {
		c.drop(e)
	}
}

// Stats returns counters of what the Client has done so far.
func (c *Client) Stats() Stats { return c.stats() }

func (c *engine[T]) stats() Stats {
	return Stats{
		Fetches:       c.fetches.Load(),
		FetchErrors:   c.fetchErrors.Load(),
		StoreLoads:    c.storeLoads.Load(),
		StoreErrors:   c.storeErrors.Load(),
		Invalidations: c.invalidations.Load(),
		Replays:       c.replays.Load(),
	}
}

// Close stops background refreshes, cancels refreshes in flight and waits
// for them to end. A refresh that ignores its context (a Source without a
// TokenContext method, or a Store, that does not return) is waited for at
// most a second: its goroutine is left running until the call returns, as
// after a refresh abandoned at [Config.RefreshTimeout]. Close does not
// delete anything stored. Calls that need a refresh after Close fail with
// [ErrClosed]. A store that [NewFromEnv] opened (and that has a Close
// method, as a Redis store does) is closed by the first Close, and its
// error returned; a [Config.Store] passed to [New] is left to the caller.
func (c *Client) Close() error {
	if c.close() && c.ownedStore != nil {
		return c.ownedStore.Close()
	}
	return nil
}

// close stops the engine's refreshes and waits for them, and reports
// whether this was the first call.
func (c *engine[T]) close() (first bool) {
	c.mu.Lock()
	first = !c.closed
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	c.stopDrain() // abandoned refreshes' requests end now
	if first && c.obs != nil && c.obs.Closed != nil {
		c.observeClosed()
	}
	return first
}

// String names the credential, never its token.
func (c *Client) String() string {
	var b strings.Builder
	b.WriteString("tokenmgr.Client(")
	b.WriteString(c.key)
	b.WriteString(")")
	return b.String()
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
