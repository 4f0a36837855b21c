package tokenmgr

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

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
	return &transport{c: c, base: base}
}

type transport struct {
	c    *Client
	base http.RoundTripper
}

// maxDrain bounds how much of a rejected response is read so its
// connection can be reused.
const maxDrain = 64 << 10

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := t.c
	if redirectedAway(req) {
		return t.base.RoundTrip(req) // no token for another host
	}
	if err := c.hosts.Check(req.URL); err != nil {
		closeBody(req)
		return nil, err
	}
	e, err := c.entry(req.Context())
	if err != nil {
		closeBody(req)
		return nil, err
	}
	r2, err := c.authorize(req, e)
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
		verdict = c.classifyResponse(resp)
	}
	if !verdict.Retry() {
		c.damp.AcceptedToken(req.URL, e.tok.AccessToken, e.obtained)
		return resp, nil
	}
	ctx := req.Context()
	host := damp.HostKey(req.URL)
	if c.damp.Damped(host, c.now()) || c.dampRejection(host, e) {
		c.observeRejected(ctx, host, verdict.Code, false)
		c.observeHeldOff(ctx, "damping", host)
		return resp, nil
	}
	if req.Body != nil && req.Body != http.NoBody && req.GetBody == nil {
		c.drop(e) // the body is gone: the next request gets a new token
		c.observeRejected(ctx, host, verdict.Code, false)
		return resp, nil
	}
	e2, err := c.replace(ctx, e)
	if err != nil {
		c.log.Warn("could not replace a rejected token; returning the server's answer", "error", err)
		c.observeRejected(ctx, host, verdict.Code, false)
		return resp, nil
	}
	var body io.ReadCloser
	if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
		if body, err = req.GetBody(); err != nil {
			c.observeRejected(ctx, host, verdict.Code, false)
			return resp, nil
		}
	}
	r3, err := c.authorize(req, e2)
	if err != nil {
		if body != nil {
			body.Close()
		}
		c.observeRejected(ctx, host, verdict.Code, false)
		return resp, nil
	}
	if body != nil {
		r3.Body = body
	}
	drain(resp)
	c.replays.Add(1)
	c.observeRejected(ctx, host, verdict.Code, true)
	c.log.Debug("replaying request with a fresh token", "host", req.URL.Host)
	resp, err = t.base.RoundTrip(r3)
	if err != nil {
		return resp, err
	}
	verdict = classify.Classification{}
	if maybeAuthError(resp.StatusCode) {
		verdict = c.classifyResponse(resp)
	}
	if verdict.Retry() {
		c.observeRejected(ctx, host, verdict.Code, false)
		c.dampRejection(host, e2)
	} else {
		c.damp.AcceptedToken(req.URL, e2.tok.AccessToken, e2.obtained)
	}
	return resp, nil
}

// dampRejection notes that host rejected e, and reports whether the
// rejection goes to the caller without a refresh (see damper).
func (c *Client) dampRejection(host string, e *entry) bool {
	damped, d := c.rejected(host, e)
	if damped {
		c.log.Warn("a fresh token was rejected too; not refreshing on this host's rejections for a while",
			"host", host, "for", d)
	}
	return damped
}

// classifyResponse judges a response to a request that carried a token.
func (c *Client) classifyResponse(resp *http.Response) classify.Classification {
	cl := c.classify
	cl.Wait = c.classifyWait
	return cl.ClassifyResponse(resp, true)
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
func (c *Client) authorize(req *http.Request, e *entry) (*http.Request, error) {
	r2 := new(http.Request)
	*r2 = *req
	h := make(http.Header, len(req.Header)+1)
	for k, v := range req.Header {
		h[k] = v[:len(v):len(v)]
	}
	r2.Header = h
	if c.attach != nil {
		if req.URL != nil {
			u := *req.URL
			r2.URL = &u
		}
		if err := c.callAttach(r2, e.tok); err != nil {
			return nil, fmt.Errorf("tokenmgr: attaching token: %w", err)
		}
		return r2, nil
	}
	h["Authorization"] = e.auth
	return r2, nil
}

// callAttach calls Config.Attach, recovering a panic, whose value is
// redacted of tok too: it may have left service while Attach ran.
func (c *Client) callAttach(req *http.Request, tok *oauth2.Token) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = c.panicError("Attach", r, tok)
		}
	}()
	return c.attach(req, tok)
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
