package tokenmgr

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/classify"
	"github.com/tokenmgr/tokenmgr/damp"
)

// The transport.
//
// Each request is cloned and given the token in service. When the answer
// is classified KindInvalidToken (see Classifier), the transport drops that
// exact token (compare-and-swap: when another goroutine already replaced
// it, the newer token is used without a new fetch), drains and closes the
// first response, and replays the request once with a fresh token and a
// fresh body from req.GetBody. A request whose body cannot be rewound is
// never sent twice: the first response is returned and the next request
// gets the new token. A second rejection goes back to the caller as it is.
//
// The token goes only where it is meant to: never on a redirect to another
// origin (scheme, host, port) or of unknown origin, never over plain http
// except to loopback (unless Config.AllowInsecureHTTP), and only to
// Config.AllowedHosts when set.

// Transport returns an [http.RoundTripper] that attaches the Client's token
// to each request sent through base (nil: [http.DefaultTransport]).
func (c *Client) Transport(base http.RoundTripper) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	return &transport[*oauth2.Token]{cred: &c.engine, rules: c.send, attach: c.attach, base: base}
}

// transport sends requests with a credential, by rules shared by the
// transports of one Client. It knows nothing of how the credential is
// refreshed: the Client's engine does that.
type transport[T any] struct {
	cred   credential[T]
	rules  *sendRules[T]
	attach func(*http.Request, T) error // nil: the entry's Authorization header
	base   http.RoundTripper
}

// credential is what a transport needs of the Client: the token to send,
// its replacement when a server rejects it, and where to report.
type credential[T any] interface {
	// entry returns the token to send.
	entry(ctx context.Context) (*entry[T], error)
	// replace returns a token to use instead of e, which a server
	// rejected: a newer one in service, or one shared refresh's.
	replace(ctx context.Context, e *entry[T]) (*entry[T], error)
	// drop takes e out of service unless it has been replaced.
	drop(e *entry[T]) bool
	// inService reports whether e is the token in service.
	inService(e *entry[T]) bool
	// clock returns the time damping is judged by.
	clock() time.Time
	// logger receives the transport's log records.
	logger() *slog.Logger
	// attachPanic turns a panic in Config.Attach into an error, redacted
	// of tok too.
	attachPanic(r any, tok T) error
	// rejected reports a rejection by host, replayed or not; held off, a
	// rejection passed on without a refresh (damping).
	rejected(ctx context.Context, host, code string, replayed bool)
	heldOff(ctx context.Context, host string)
}

// sendRules are a Client's rules for sending its token: where it may go,
// how answers are judged, and the per-host damping of rejections.
type sendRules[T any] struct {
	hosts    *classify.HostPolicy
	classify classify.Classifier // Wait bounds the wait for a rejection's body
	damp     damp.Hosts
}

// newSendRules returns cfg's rules for sending a credential.
func newSendRules[T any](cfg *Config) (*sendRules[T], error) {
	hosts, err := classify.NewHostPolicy(cfg.AllowedHosts, cfg.AllowInsecureHTTP)
	if err != nil {
		return nil, err
	}
	return &sendRules[T]{
		hosts:    hosts,
		classify: classify.Classifier{Extra: append([]string(nil), cfg.InvalidTokenCodes...)},
	}, nil
}

// The engine is its Client's transports' credential.

func (c *engine[T]) inService(e *entry[T]) bool               { return c.cur.Load() == e }
func (c *engine[T]) clock() time.Time                         { return c.now() }
func (c *engine[T]) logger() *slog.Logger                     { return c.log }
func (c *engine[T]) attachPanic(r any, tok T) error           { return c.panicError("Attach", r, tok) }
func (c *engine[T]) heldOff(ctx context.Context, host string) { c.observeHeldOff(ctx, "damping", host) }
func (c *engine[T]) rejected(ctx context.Context, host, code string, replayed bool) {
	if replayed {
		c.replays.Add(1)
	}
	c.observeRejected(ctx, host, code, replayed)
}

// maxDrain bounds how much of a rejected response is read so its
// connection can be reused.
const maxDrain = 64 << 10

func (t *transport[T]) RoundTrip(req *http.Request) (*http.Response, error) {
	c, r := t.cred, t.rules
	if redirectedAway(req) {
		return t.base.RoundTrip(req) // no token for another host
	}
	if err := r.hosts.Check(req.URL); err != nil {
		closeBody(req)
		return nil, err
	}
	e, err := c.entry(req.Context())
	if err != nil {
		closeBody(req)
		return nil, err
	}
	r2, err := t.authorize(req, e)
	if err != nil {
		closeBody(req)
		return nil, err
	}
	resp, err := t.base.RoundTrip(r2)
	if err != nil {
		return resp, err
	}
	var verdict classify.Classification
	if maybeAuthError(resp.StatusCode) {
		verdict = r.classify.ClassifyResponse(resp, true)
	}
	if !verdict.Retry() {
		r.damp.AcceptedToken(req.URL, e.id, e.obtained)
		return resp, nil
	}
	ctx := req.Context()
	host := damp.HostKey(req.URL)
	if r.damp.Damped(host, c.clock()) || t.dampRejection(host, e) {
		c.rejected(ctx, host, verdict.Code, false)
		c.heldOff(ctx, host)
		return resp, nil
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		c.drop(e) // the body is gone: the next request gets a new token
		c.rejected(ctx, host, verdict.Code, false)
		return resp, nil
	}
	e2, err := c.replace(ctx, e)
	if err != nil {
		c.logger().Warn("could not replace a rejected token; returning the server's answer", "error", err)
		c.rejected(ctx, host, verdict.Code, false)
		return resp, nil
	}
	var body io.ReadCloser
	if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
		if body, err = req.GetBody(); err != nil {
			c.rejected(ctx, host, verdict.Code, false)
			return resp, nil
		}
	}
	r3, err := t.authorize(req, e2)
	if err != nil {
		if body != nil {
			body.Close()
		}
		c.rejected(ctx, host, verdict.Code, false)
		return resp, nil
	}
	if body != nil {
		r3.Body = body
	}
	drain(resp)
	c.rejected(ctx, host, verdict.Code, true)
	c.logger().Debug("replaying request with a fresh token", "host", req.URL.Host)
	resp, err = t.base.RoundTrip(r3)
	if err != nil {
		return resp, err
	}
	verdict = classify.Classification{}
	if maybeAuthError(resp.StatusCode) {
		verdict = r.classify.ClassifyResponse(resp, true)
	}
	if verdict.Retry() {
		c.rejected(ctx, host, verdict.Code, false)
		t.dampRejection(host, e2)
	} else {
		r.damp.AcceptedToken(req.URL, e2.id, e2.obtained)
	}
	return resp, nil
}

// dampRejection notes that host rejected e, and reports whether the
// rejection goes to the caller without a refresh (see damp.Hosts).
func (t *transport[T]) dampRejection(host string, e *entry[T]) bool {
	damped, d := t.rules.rejected(t.cred, host, e)
	if damped {
		t.cred.logger().Warn("a fresh token was rejected too; not refreshing on this host's rejections for a while",
			"host", host, "for", d)
	}
	return damped
}

// maybeAuthError says which statuses are worth reading a body for: the
// token codes come back as 400 (AWS JSON, S3), 401 or 403.
func maybeAuthError(status int) bool {
	return status == http.StatusBadRequest || status == http.StatusUnauthorized || status == http.StatusForbidden
}

// authorize returns a shallow copy of req carrying e's token. The header
// map is new; its value slices are shared, which the RoundTripper contract
// (no one modifies a request in flight) allows, with their capacity cut to
// their length, so that an Attach appending a value (Header.Add) copies
// the slice instead of writing into spare room of the caller's array,
// which the caller's other requests may share. For a Config.Attach the URL
// is a copy too: one that puts the token in the query must not write it
// into the caller's URL (which http.Client quotes in its errors).
func (t *transport[T]) authorize(req *http.Request, e *entry[T]) (*http.Request, error) {
	r2 := new(http.Request)
	*r2 = *req
	h := make(http.Header, len(req.Header)+1)
	for k, v := range req.Header {
		h[k] = v[:len(v):len(v)]
	}
	r2.Header = h
	if t.attach != nil {
		if req.URL != nil {
			u := *req.URL
			r2.URL = &u
		}
		if err := t.callAttach(r2, e.tok); err != nil {
			return nil, fmt.Errorf("tokenmgr: attaching token: %w", err)
		}
		return r2, nil
	}
	h["Authorization"] = e.auth
	return r2, nil
}

// callAttach calls Config.Attach, recovering a panic, whose value is
// redacted of tok too: it may have left service while Attach ran.
func (t *transport[T]) callAttach(req *http.Request, tok T) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = t.cred.attachPanic(r, tok)
		}
	}()
	return t.attach(req, tok)
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}

func drain(resp *http.Response) {
	if resp.Body == nil {
		return // a base transport may answer with none
	}
	if classify.Stalled(resp.Body) {
		resp.Body.Close() // a stalled body: give up the connection rather than wait
		return
	}
	io.CopyN(io.Discard, resp.Body, maxDrain)
	resp.Body.Close()
}

// redirectedAway reports whether req is a redirect hop that must not carry
// the token: one to another origin (scheme, host and port) than the user's
// request, or one whose origin cannot be established because a transport
// or middleware left a Response.Request unset in the chain. It fails
// closed: only a hop proven to stay on the original origin gets the token.
func redirectedAway(req *http.Request) bool {
	if req.Response == nil {
		return false // not a redirect: the user's own request
	}
	orig := req
	for hops := 0; orig.Response != nil; hops++ {
		if orig.Response.Request == nil || hops > maxRedirectChain {
			return true // the chain is broken (or absurd): the origin is unknown
		}
		orig = orig.Response.Request
	}
	return !sameOrigin(orig.URL, req.URL)
}

// maxRedirectChain bounds the walk of a redirect chain; net/http itself
// stops after 10 redirects.
const maxRedirectChain = 64

// sameOrigin reports whether a and b share scheme, host and port (RFC 6454):
// an https to http hop on the same host and port is another origin.
func sameOrigin(a, b *url.URL) bool {
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) && damp.Port(a) == damp.Port(b)
}
