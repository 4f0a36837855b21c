package login

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"io"
	"log"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/redact"
)

// callbackPath is the redirect URI's path on the loopback listener.
const callbackPath = "/callback"

// Browser signs a person in with the browser: it listens on a loopback
// port, opens the authorization URL (PKCE S256, a random state and, with
// "openid", a nonce), waits for the one redirect that carries the state,
// exchanges its code with the verifier, verifies the ID token, and saves
// the result under cfg.Store/cfg.Key. The browser is answered with a page
// saying the sign-in is done. A redirect without the right state is
// answered 400 and ignored, any other path 404; the listener closes after
// the right redirect or when ctx ends (the error then wraps ctx.Err()).
func Browser(ctx context.Context, cfg Config) (*oauth2.Token, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	ep, err := resolve(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	if ep.AuthURL == "" {
		return nil, errors.New("login: the issuer names no authorization_endpoint: use the device login")
	}
	ln, err := listen(ctx, cfg.ListenAddr)
	if err != nil {
		return nil, err
	}
	redirect := "http://" + ln.Addr().String() + callbackPath

	verifier := oauth2.GenerateVerifier()
	state := random()
	var nonce string
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if cfg.wantsIDToken() {
		nonce = random()
		opts = append(opts, oauth2.SetAuthURLParam("nonce", nonce))
	}
	oc := cfg.oauth2Config(ep, redirect)
	authURL := oc.AuthCodeURL(state, opts...)

	h := &callback{state: state, issuer: cfg.Issuer, sendsIss: ep.sendsIss, done: make(chan redirectResult, 1)}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: discardLog}
	served := make(chan struct{})
	go func() { srv.Serve(ln); close(served) }()
	defer func() { srv.Close(); <-served }()

	opened := make(chan error, 1)
	go func() { opened <- cfg.open(ctx, authURL) }()

	var res redirectResult
wait:
	for {
		select {
		case err := <-opened:
			opened = nil
			if err != nil {
				fmt.Fprintf(cfg.prompt(), "Open this URL in a browser to sign in (%s):\n\n  %s\n\n", display.Cut(display.OneLine(err.Error()), 200), authURL)
			}
		case res = <-h.done:
			break wait
		case <-ctx.Done():
			return nil, fmt.Errorf("login: waiting for the browser's redirect: %w", ctx.Err())
		}
	}
	// The one valid redirect came: let the browser get its page, then
	// close the listener before the exchange.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	srv.Shutdown(sctx)
	cancel()
	if res.err != nil {
		return nil, res.err
	}
	obtained := time.Now()
	tok, err := oc.Exchange(cfg.context(ctx), res.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, redacted("login: exchanging the code at the token endpoint", err, &cfg, res.code, verifier)
	}
	return cfg.finish(ctx, ep, tok, nonce, obtained)
}

// listen binds the loopback listener: addr must be a loopback IP literal
// and port (RFC 8252 §7.3, §8.3: not "localhost", which a hosts file or
// resolver can point elsewhere).
func listen(ctx context.Context, addr string) (net.Listener, error) {
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("login: ListenAddr %q: %w", display.Cut(addr, 60), err)
	}
	if ip, err := netip.ParseAddr(host); err != nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("login: ListenAddr %q must be a loopback IP and port, such as 127.0.0.1:0: %w", display.Cut(addr, 60), ErrNotLoopback)
	}
	ln, err := (&net.ListenConfig{}).Listen(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("login: listening for the browser's redirect: %w", err)
	}
	if !loopbackAddr(ln.Addr()) {
		ln.Close()
		return nil, fmt.Errorf("login: listener bound %s: %w", ln.Addr(), ErrNotLoopback)
	}
	return ln, nil
}

// open runs OpenURL (or the system browser), a panic in it being an error.
func (c *Config) open(ctx context.Context, u string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("OpenURL panicked: %v", r)
		}
	}()
	if c.OpenURL != nil {
		return c.OpenURL(ctx, u)
	}
	return openBrowser(ctx, u)
}

// random returns 32 random bytes, base64url: a state or nonce.
func random() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// redirectResult is what the valid redirect said: a code, or why not.
type redirectResult struct {
	code string
	err  error
}

// callback answers the loopback listener's requests.
type callback struct {
	state, issuer string
	sendsIss      bool // the issuer's metadata says every redirect carries iss
	once          sync.Once
	done          chan redirectResult
}

const donePage = `<!doctype html><meta charset="utf-8"><title>Signed in</title>
<p>Signed in. You can close this window and go back to the terminal.</p>
`

const failedPage = `<!doctype html><meta charset="utf-8"><title>Sign-in failed</title>
<p>Sign-in failed: %s</p>
`

func (h *callback) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer")
	if r.URL.Path != callbackPath {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodGet {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	res, ok := parseRedirect(r.URL.RawQuery, h.state, h.issuer, h.sendsIss)
	if !ok {
		http.Error(w, "login: not the redirect this sign-in waits for (state missing or wrong)", http.StatusBadRequest)
		return
	}
	first := false
	h.once.Do(func() { first = true })
	if !first {
		http.Error(w, "login: this sign-in is already finished", http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if res.err != nil {
		fmt.Fprintf(w, failedPage, html.EscapeString(res.err.Error()))
	} else {
		fmt.Fprint(w, donePage)
	}
	h.done <- res
}

// parseRedirect reads the redirect's query. ok is false when it does not
// carry exactly the expected state: such a redirect is not this sign-in's
// (a stale tab, or a forged request) and is ignored. With the state, an
// "error" ends the sign-in with the server's reason, as does an "iss"
// (RFC 9207) naming another issuer, or none when the issuer's metadata
// says it always sends one (sendsIss: RFC 9207 §2.4 then requires it, or
// a mix-up attack goes unseen); otherwise the code is the result.
func parseRedirect(rawQuery, state, issuer string, sendsIss bool) (res redirectResult, ok bool) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil || len(q["state"]) != 1 || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1 {
		return redirectResult{}, false
	}
	iss, hasIss := q["iss"]
	if hasIss && issuer != "" && (len(iss) != 1 || iss[0] != issuer) {
		return redirectResult{err: fmt.Errorf("login: the redirect names issuer %q, not %q (RFC 9207): another server answered",
			printable(q.Get("iss"), 100), display.Cut(issuer, 100))}, true
	}
	if !hasIss && sendsIss && issuer != "" {
		return redirectResult{err: fmt.Errorf("login: the redirect names no issuer, while %s says it always does (RFC 9207): another server answered",
			display.Cut(issuer, 100))}, true
	}
	if code := q.Get("error"); code != "" || len(q["error"]) > 0 {
		return redirectResult{err: &deniedError{Code: printable(code, 60), Description: printable(q.Get("error_description"), 200)}}, true
	}
	if len(q["code"]) != 1 || q.Get("code") == "" {
		return redirectResult{err: errors.New("login: the redirect carries neither a code nor an error")}, true
	}
	return redirectResult{code: q.Get("code")}, true
}

// deniedError is a sign-in the server refused, in the redirect or, for
// the device login, at the token endpoint. It matches [ErrDenied].
type deniedError struct {
	Code, Description string
}

func (e *deniedError) Error() string {
	s := "login: sign-in was denied"
	if e.Code != "access_denied" {
		s = "login: sign-in failed"
	}
	if e.Code != "" {
		s += ": " + e.Code
	}
	if e.Description != "" {
		s += ": " + e.Description
	}
	return s
}

func (e *deniedError) Is(target error) bool { return target == ErrDenied }

// printable is display.Printable: a server's words, shown to a person.
func printable(s string, n int) string { return display.Printable(s, n) }

// redacted reports a failed request to the issuer with every secret the
// request held blanked out of the server's answer, which some servers
// quote.
func redacted(what string, err error, cfg *Config, secrets ...string) error {
	r := redact.New(secrets...)
	r.AddClient(cfg.ClientID, cfg.ClientSecret)
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		msg := re.ErrorCode
		if msg == "" {
			msg = fmt.Sprintf("answered %d", statusOf(re))
		}
		if re.ErrorDescription != "" {
			msg += ": " + re.ErrorDescription
		}
		return &issuerError{what: what, msg: printable(r.Redact(msg), 300), Code: re.ErrorCode}
	}
	return &issuerError{what: what, msg: r.Redact(err.Error()), err: unwrapCtx(err)}
}

func statusOf(re *oauth2.RetrieveError) int {
	if re.Response == nil {
		return 0
	}
	return re.Response.StatusCode
}

// unwrapCtx keeps a context error matchable (errors.Is) through the
// redaction, which otherwise keeps only the text.
func unwrapCtx(err error) error {
	switch {
	case errors.Is(err, context.Canceled):
		return context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return context.DeadlineExceeded
	}
	return nil
}

// issuerError is a failed request to the issuer, its text redacted.
type issuerError struct {
	what, msg string
	Code      string // the OAuth error code, when the server sent one
	err       error
}

func (e *issuerError) Error() string { return e.what + ": " + e.msg }
func (e *issuerError) Unwrap() error { return e.err }

// discardLog silences net/http's own log of the listener (a client that
// hangs up): nothing to tell the person.
var discardLog = log.New(io.Discard, "", 0)
