// Package classify holds the rules tokenmgr's transport sends a token by
// and judges the answers with: what an error response means for the token
// that was sent ([Classifier]: invalid, clock skew, access denied, …), which
// hosts may receive the token ([CheckDestination], [HostPolicy]), and why no
// answer came from a token endpoint ([NetworkFailure]). The transport, the
// tokenmgr doctor (package diagnose) and the command line share these rules
// through it, so a check made before any token is sent is the rule the
// transport applies.
package classify

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Response classification.
//
// A response is judged by its error code, not its status: AWS sends the
// same code as 400 from one service and 403 from another. The code is
// looked for, in order, in the X-Amzn-ErrorType header, a top-level JSON
// "__type" or "code" field (or "error.code", as Azure sends it), and the
// XML <Code> of <ErrorResponse><Error>, <Error> or <Response><Errors><Error>.
// It is cleaned to what stands before the first ':' and after the last '#'.
// An RFC 6750 WWW-Authenticate challenge is read too.

// Kind says what an error response means for the token that was sent.
type Kind int

// Kinds of response.
const (
	// KindOther is any response that says nothing about the token.
	KindOther Kind = iota
	// KindInvalidToken: the token is invalid, expired or revoked. The
	// transport drops it, fetches a new one and replays the request once.
	KindInvalidToken
	// KindClockSkew: the request's timestamp is too far from the server's
	// (RequestExpired, RequestTimeTooSkewed). A new token does not help.
	KindClockSkew
	// KindInsufficientScope: the token is valid but lacks a scope.
	KindInsufficientScope
	// KindClaimsChallenge: the server wants a token with more claims (CAE).
	// A plain refresh returns the same kind of token, so it is not retried.
	KindClaimsChallenge
	// KindChallenge: a discovery challenge naming where to get a token.
	KindChallenge
	// KindAccessDenied: the caller is known but not allowed.
	KindAccessDenied
)

var kindNames = [...]string{"other", "invalid_token", "clock_skew", "insufficient_scope", "claims_challenge", "challenge", "access_denied"}

// String returns a short lower-case name of the kind.
func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Classification is the verdict on one response.
type Classification struct {
	Kind   Kind
	Code   string // the cleaned error code, e.g. "InvalidClientTokenId" or "invalid_token"
	Source string // where the code was found: "x-amzn-errortype", "json", "xml", "www-authenticate", "status"
}

// Retry reports whether the transport refreshes and replays on this verdict.
func (c Classification) Retry() bool { return c.Kind == KindInvalidToken }

// MaxBody is how much of a response body is read to classify it.
const MaxBody = 64 << 10

var invalidTokenCodes = map[string]bool{
	"invalidclienttokenid":        true,
	"unrecognizedclientexception": true,
	"expiredtoken":                true,
	"expiredtokenexception":       true,
	"invalidtoken":                true,
	"invalidaccesskeyid":          true,
	"expiredauthenticationtoken":  true,
	"invalidauthenticationtoken":  true,
	"invalid_token":               true,
}

var clockSkewCodes = map[string]bool{
	"requestexpired":       true,
	"requesttimetooskewed": true,
}

var deniedCodes = map[string]bool{
	"accessdenied":          true,
	"accessdeniedexception": true,
	"authorizationfailed":   true,
	"forbidden":             true,
}

// Classifier decides what an error response means. The zero value knows the
// codes listed in the package documentation; Extra adds more codes that mean
// "invalid token" (compared case-insensitively).
type Classifier struct {
	Extra []string
	// Wait bounds the wait for an error response's body in
	// [Classifier.ClassifyResponse]; zero means [BodyWait].
	Wait time.Duration
}

// Classify judges a response from its status, headers and the first bytes of
// its body (at most [MaxBody] are looked at). carried says whether the
// request carried a token: only then is a bare 401 an invalid token.
func (cl *Classifier) Classify(status int, h http.Header, body []byte, carried bool) Classification {
	if len(body) > MaxBody {
		body = body[:MaxBody]
	}
	if status >= 500 {
		// A server failure says nothing about the token: never refresh.
		code, src := findCode(h, body)
		return Classification{Kind: KindOther, Code: code, Source: src}
	}
	ch := parseBearerChallenge(h.Values("Www-Authenticate"))
	if ch.present {
		switch {
		case ch.claims != "" || ch.err == "insufficient_claims":
			return Classification{Kind: KindClaimsChallenge, Code: ch.err, Source: "www-authenticate"}
		case ch.err == "insufficient_scope":
			return Classification{Kind: KindInsufficientScope, Code: ch.err, Source: "www-authenticate"}
		case ch.err == "invalid_token":
			return Classification{Kind: KindInvalidToken, Code: ch.err, Source: "www-authenticate"}
		}
	}
	code, src := findCode(h, body)
	if code != "" {
		lc := strings.ToLower(code)
		switch {
		case invalidTokenCodes[lc] || cl.extra(code):
			return Classification{Kind: KindInvalidToken, Code: code, Source: src}
		case clockSkewCodes[lc]:
			return Classification{Kind: KindClockSkew, Code: code, Source: src}
		case deniedCodes[lc]:
			return Classification{Kind: KindAccessDenied, Code: code, Source: src}
		}
	}
	if status == http.StatusUnauthorized {
		if ch.present && ch.err == "" && ch.discovery {
			return Classification{Kind: KindChallenge, Code: code, Source: "www-authenticate"}
		}
		if carried {
			return Classification{Kind: KindInvalidToken, Code: code, Source: "status"}
		}
	}
	if status == http.StatusForbidden && code == "" {
		return Classification{Kind: KindAccessDenied, Source: "status"}
	}
	return Classification{Kind: KindOther, Code: code, Source: src}
}

func (cl *Classifier) extra(code string) bool {
	for _, c := range cl.Extra {
		if strings.EqualFold(c, code) {
			return true
		}
	}
	return false
}

// ClassifyResponse classifies resp and leaves resp.Body intact for the
// caller. When the headers decide (an RFC 6750 challenge naming the error,
// an X-Amzn-ErrorType), the body is not read. Otherwise it looks at up to
// [MaxBody] bytes of the body, but waits for them at most
// Wait (or until the request's context ends): a server that
// sends its headers and stalls does not hold the caller, who gets the
// verdict from what had arrived and then reads the whole body as it comes.
// A HEAD response is judged on status and headers alone.
func (cl *Classifier) ClassifyResponse(resp *http.Response, carried bool) Classification {
	wait := cl.Wait
	if wait <= 0 {
		wait = BodyWait
	}
	return cl.classifyResponse(resp, carried, wait)
}

// classifyResponse is ClassifyResponse waiting at most wait for the body.
func (cl *Classifier) classifyResponse(resp *http.Response, carried bool, wait time.Duration) Classification {
	var body []byte
	if resp.Body != nil && resp.Body != http.NoBody && (resp.Request == nil || resp.Request.Method != http.MethodHead) && !headersDecide(resp.StatusCode, resp.Header) {
		ctx := context.Background()
		if resp.Request != nil {
			ctx = resp.Request.Context()
		}
		body = peekBody(ctx, resp, wait)
	}
	return cl.Classify(resp.StatusCode, resp.Header, body, carried)
}

// BodyWait bounds how long [Classifier.ClassifyResponse] waits for
// the body of an error response.
const BodyWait = time.Second

// headersDecide reports whether the headers alone give the verdict, so the
// body need not be waited for. It follows [Classifier.Classify]'s order: a
// challenge decides only below 500, where Classify reads it before the
// body; on a 5xx the body's code is reported.
func headersDecide(status int, h http.Header) bool {
	if v := h.Get("X-Amzn-Errortype"); v != "" && cleanCode(v) != "" {
		return true
	}
	if status >= 500 {
		return false
	}
	ch := parseBearerChallenge(h.Values("Www-Authenticate"))
	return ch.present && (ch.claims != "" || ch.err == "insufficient_claims" || ch.err == "insufficient_scope" || ch.err == "invalid_token")
}

// peekBody reads up to MaxBody bytes of resp.Body (fewer when
// Content-Length says so) in a goroutine and returns what arrived within
// wait; resp.Body is replaced by a body that gives the caller those bytes
// and then the rest. The goroutine ends when its read does: at the bytes
// wanted, the end of the body, an error, or when the body is closed.
func peekBody(ctx context.Context, resp *http.Response, wait time.Duration) []byte {
	n := int64(MaxBody)
	if resp.ContentLength > 0 && resp.ContentLength < n {
		n = resp.ContentLength // a zero is often a hand-built response's unset field: read anyway
	}
	p := &peekedBody{rc: resp.Body, done: make(chan struct{})}
	resp.Body = p
	go p.peek(n)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
	case <-ctx.Done():
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.buf)
}

// Stalled reports whether body is one [Classifier.ClassifyResponse] left
// in a response whose rest has not arrived: a caller discarding the
// response should close it rather than wait to drain it.
func Stalled(body io.Reader) bool {
	p, ok := body.(*peekedBody)
	return ok && !p.finished()
}

// peekedBody is a response body whose first bytes a classifier read.
type peekedBody struct {
	rc   io.ReadCloser
	done chan struct{} // closed when the peek's reads are over

	mu  sync.Mutex
	buf []byte // what the peek read
	err error  // the error that ended the peek, nil when it read all it wanted

	off int // how much of buf the caller has read; only after done
}

// errBodyPanic ends a peek whose Read panicked. The panic value is not
// quoted: it may hold what the body carried.
var errBodyPanic = errors.New("tokenmgr: reading the response body panicked")

func (p *peekedBody) peek(n int64) {
	defer close(p.done)
	defer func() {
		// This goroutine is ours, not the caller's: a panic in the body's
		// Read (a custom base transport's) must not end the program.
		if recover() != nil {
			p.mu.Lock()
			p.err = errBodyPanic
			p.mu.Unlock()
		}
	}()
	chunk := make([]byte, min(n, 4096))
	for left := n; left > 0; {
		k, err := p.rc.Read(chunk[:min(left, int64(len(chunk)))])
		p.mu.Lock()
		p.buf = append(p.buf, chunk[:k]...)
		p.err = err
		p.mu.Unlock()
		if err != nil {
			return
		}
		left -= int64(k)
	}
}

// Read gives the peeked bytes, then the rest of the body. It waits for the
// peek to end first: until then the peek owns the body.
func (p *peekedBody) Read(b []byte) (int, error) {
	<-p.done
	if p.off < len(p.buf) {
		k := copy(b, p.buf[p.off:])
		p.off += k
		return k, nil
	}
	if p.err != nil {
		return 0, p.err // the end of the body, or the error met while peeking
	}
	return p.rc.Read(b)
}

// Close closes the body, which also ends a peek still waiting for bytes.
func (p *peekedBody) Close() error { return p.rc.Close() }

// finished reports whether the peek's reads are over, so reading the body
// will not wait on it.
func (p *peekedBody) finished() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// findCode looks for an error code where the wire formats put it. It reads
// them as aws-sdk-go-v2's generated deserializers do: the X-Amzn-ErrorType
// header first, then the body (the awsRestjson1 and awsAwsjson1x
// deserializers of every service client).
func findCode(h http.Header, body []byte) (code, source string) {
	if v := h.Get("X-Amzn-Errortype"); v != "" {
		if c := cleanCode(v); c != "" {
			return c, "x-amzn-errortype"
		}
	}
	b := bytes.TrimSpace(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))
	if len(b) == 0 {
		return "", ""
	}
	switch b[0] {
	case '{':
		if c := jsonCode(b); c != "" {
			return c, "json"
		}
	case '<':
		if c := xmlCode(b); c != "" {
			return c, "xml"
		}
	}
	return "", ""
}

// cleanCode keeps what stands before the first ':' and after the last '#',
// as aws-sdk-go-v2's restjson.SanitizeErrorCode does ("aws.protocoltests#
// FooError:http://..." is "FooError").
func cleanCode(s string) string {
	if i := strings.IndexByte(s, ':'); i >= 0 {
		s = s[:i]
	}
	if i := strings.LastIndexByte(s, '#'); i >= 0 {
		s = s[i+1:]
	}
	s = strings.TrimSpace(s)
	if len(s) > 128 {
		return ""
	}
	return s
}

// jsonCode reads the members aws-sdk-go-v2's restjson.GetErrorInfo reads
// ("code" and "__type"), and Azure's nested "error.code".
func jsonCode(b []byte) string {
	var top map[string]json.RawMessage
	if json.Unmarshal(b, &top) != nil {
		return ""
	}
	// Keys match case-insensitively; the exact spelling wins, then the
	// smallest key, so the verdict never depends on map order.
	get := func(m map[string]json.RawMessage, key string) (json.RawMessage, bool) {
		if v, ok := m[key]; ok {
			return v, true
		}
		best := ""
		for k := range m {
			if strings.EqualFold(k, key) && (best == "" || k < best) {
				best = k
			}
		}
		v, ok := m[best]
		return v, ok && best != ""
	}
	str := func(raw json.RawMessage) string {
		var s string
		if json.Unmarshal(raw, &s) != nil {
			return ""
		}
		return cleanCode(s)
	}
	for _, k := range []string{"__type", "code"} {
		if v, ok := get(top, k); ok {
			if s := str(v); s != "" {
				return s
			}
		}
	}
	if v, ok := get(top, "error"); ok {
		if s := str(v); s != "" { // {"error":"invalid_token"}
			return s
		}
		var inner map[string]json.RawMessage
		if json.Unmarshal(v, &inner) == nil { // Azure: {"error":{"code":"ExpiredAuthenticationToken"}}
			if c, ok := get(inner, "code"); ok {
				if s := str(c); s != "" {
					return s
				}
			}
		}
	}
	return ""
}

// xmlCode returns the <Code> of an AWS error document: the query shape
// <ErrorResponse><Error> and S3's bare <Error> (aws-sdk-go-v2's
// protocol/xml.GetErrorResponseComponents, with and without error
// wrapping), and EC2's <Response><Errors><Error>
// (protocol/ec2query.GetErrorResponseComponents).
func xmlCode(b []byte) string {
	d := xml.NewDecoder(bytes.NewReader(b))
	d.Strict = false
	var path []string
	for {
		tok, err := d.Token()
		if err != nil {
			return ""
		}
		switch t := tok.(type) {
		case xml.StartElement:
			path = append(path, t.Name.Local)
			if len(path) > 8 {
				return ""
			}
			if t.Name.Local == "Code" && codePath(path) {
				var s string
				if d.DecodeElement(&s, &t) != nil {
					return ""
				}
				return cleanCode(s)
			}
		case xml.EndElement:
			if len(path) > 0 {
				path = path[:len(path)-1]
			}
		}
	}
}

func codePath(p []string) bool {
	switch len(p) {
	case 2:
		return p[0] == "Error"
	case 3:
		return p[0] == "ErrorResponse" && p[1] == "Error"
	case 4:
		return p[0] == "Response" && p[1] == "Errors" && p[2] == "Error"
	}
	return false
}

type challenge struct {
	present   bool // a Bearer challenge, or bare auth-params, was found
	err       string
	claims    string
	discovery bool // authorization= or resource= or authorization_uri=
}

// parseBearerChallenge reads the parameters of the Bearer challenge in
// WWW-Authenticate values (RFC 7235 §4.1, RFC 6750 §3), tolerating unquoted
// values and several challenges in one header. Parameters outside a Bearer
// challenge are ignored.
func parseBearerChallenge(values []string) challenge {
	var c challenge
	for _, v := range values {
		inBearer := false
		p := strings.TrimLeft(v, " \t=")
		for len(p) > 0 {
			p = strings.TrimLeft(p, " \t,")
			if p == "" {
				break
			}
			// A token followed by '=' is a parameter; otherwise it starts a
			// new challenge (the scheme).
			i := strings.IndexAny(p, " \t,=")
			if i < 0 {
				inBearer = strings.EqualFold(p, "Bearer")
				c.present = c.present || inBearer
				break
			}
			name := p[:i]
			rest := strings.TrimLeft(p[i:], " \t")
			if !strings.HasPrefix(rest, "=") || strings.HasPrefix(rest, "==") {
				inBearer = strings.EqualFold(name, "Bearer")
				c.present = c.present || inBearer
				p = p[i:]
				if strings.HasPrefix(rest, "=") { // token68: skip it
					p = strings.TrimLeft(rest, "=")
				}
				continue
			}
			rest = strings.TrimLeft(rest[1:], " \t")
			var val string
			if strings.HasPrefix(rest, `"`) {
				val, rest = quoted(rest)
			} else {
				j := strings.IndexAny(rest, " \t,")
				if j < 0 {
					j = len(rest)
				}
				val, rest = rest[:j], rest[j:]
			}
			p = rest
			if !inBearer {
				continue
			}
			switch strings.ToLower(name) {
			case "error":
				c.err = strings.ToLower(val)
			case "claims":
				c.claims = val
			case "authorization", "authorization_uri", "resource":
				c.discovery = true
			}
		}
	}
	return c
}

// quoted reads a quoted-string at the start of s and returns its value and
// what follows.
func quoted(s string) (val, rest string) {
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), ""
}
