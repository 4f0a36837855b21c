package tokenmgr

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tokenmgr/tokenmgr/classify"
	"github.com/tokenmgr/tokenmgr/display"
	"golang.org/x/oauth2"
)

// Errors returned by the transport and the Client. Each is wrapped with
// context; test with errors.Is.
var (
	// ErrClosed is returned by a Client that has been closed.
	ErrClosed = errors.New("tokenmgr: client closed")
	// ErrInsecureHTTP is returned instead of sending a token over plain
	// http to a host that is not loopback (see [Config.AllowInsecureHTTP]).
	ErrInsecureHTTP = classify.ErrInsecureHTTP
	// ErrHostNotAllowed is returned instead of sending a token to a host
	// outside [Config.AllowedHosts].
	ErrHostNotAllowed = classify.ErrHostNotAllowed
	// ErrSameToken is returned when a refresh was needed but the Source
	// handed back the very token being replaced (a caching source such as
	// [oauth2.ReuseTokenSource], or a static token). The token stays in
	// service; the request is not replayed with it again.
	ErrSameToken = errors.New("tokenmgr: source returned the token being replaced")
	// ErrBadTokenResponse is wrapped when the token endpoint answered
	// success with something that is not a usable token: no access_token,
	// a negative expires_in, or an access_token or token_type that cannot
	// go in an Authorization header as it is (see the package doc).
	ErrBadTokenResponse = errors.New("tokenmgr: unusable token response")
	// ErrKeyInUse is returned instead of fetching a token when the Store
	// holds, under [Config.Key], a credential another configuration (or
	// another kind: AWS credentials, an OAuth token) saved: replacing it
	// would lose it and its refresh token. The error names both
	// configurations. Give each configuration its own Key, or delete the
	// stored credential (tokenmgr logout --key) when it is no longer
	// wanted.
	ErrKeyInUse = errors.New("tokenmgr: credential name in use by another configuration")
)

// OAuth error codes of RFC 6749 §5.2 that mean retrying cannot help. Test
// with errors.Is(err, ErrInvalidGrant) and so on: a *TokenError matches the
// sentinel of its code.
var (
	ErrInvalidClient      = &TokenError{Code: "invalid_client"}
	ErrInvalidGrant       = &TokenError{Code: "invalid_grant"}
	ErrUnauthorizedClient = &TokenError{Code: "unauthorized_client"}
	ErrInvalidScope       = &TokenError{Code: "invalid_scope"}
	ErrInvalidRequest     = &TokenError{Code: "invalid_request"}
)

// TokenError is a failed request to the token endpoint. It names the OAuth
// error code and never carries a secret; Unwrap gives the underlying error
// (an *[oauth2.RetrieveError] for an answer from the endpoint), so
// errors.As(err, new(*oauth2.RetrieveError)) keeps working.
type TokenError struct {
	Code        string        // OAuth error code ("invalid_client"), empty when the endpoint sent none
	Description string        // error_description (else the gist of an answer that is not OAuth's), cut to 200 bytes, control characters escaped
	StatusCode  int           // HTTP status, 0 when no answer came
	Temporary   bool          // 5xx, 429, temporarily_unavailable, network errors: worth retrying
	RetryAfter  time.Duration // from a Retry-After header, 0 when absent
	// Attempts counts the requests made for this result, retries
	// included; 0 or 1 for a single request.
	Attempts int
	Err      error
}

// Error names the code and status, and what the code usually means.
func (e *TokenError) Error() string {
	var b strings.Builder
	b.WriteString("tokenmgr: token endpoint")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " answered %d", e.StatusCode)
	}
	if e.Code != "" {
		fmt.Fprintf(&b, " %s", e.Code)
		if hint := classify.CodeHint(e.Code); hint != "" {
			fmt.Fprintf(&b, " (%s)", hint)
		}
	}
	if e.Description != "" {
		fmt.Fprintf(&b, ": %s", e.Description)
	}
	if e.Code == "" && e.Err != nil && e.StatusCode == 0 {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (after %d attempts)", e.Attempts)
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *TokenError) Unwrap() error { return e.Err }

// Is matches the code sentinels ([ErrInvalidGrant] and the rest).
func (e *TokenError) Is(target error) bool {
	t, ok := target.(*TokenError)
	return ok && t.Code != "" && t.Code == e.Code && t.StatusCode == 0 && t.Err == nil
}

// endpointError turns an error from a token source into a *TokenError
// where it came from the endpoint or the network, and marks whether it is
// worth retrying.
func endpointError(err error) error {
	var te *TokenError
	if errors.As(err, &te) {
		return err
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		e := &TokenError{Code: display.Printable(re.ErrorCode, 100), Description: display.Printable(re.ErrorDescription, 200), Err: err}
		if e.Code == "" && e.Description == "" {
			// Not an OAuth error: what the server said instead (a TLS
			// port's "Client sent an HTTP request to an HTTPS server").
			e.Description = display.Printable(answerLine(re.Body), 200)
		}
		if re.Response != nil {
			e.StatusCode = re.Response.StatusCode
			e.RetryAfter = parseRetryAfter(re.Response.Header.Get("Retry-After"), time.Now())
		}
		switch {
		case permanentCodes[e.Code]:
			// RFC 6749 §5.2 codes: retrying cannot help, even on a 5xx.
		case e.Code == "temporarily_unavailable" || e.Code == "server_error" || e.Code == "slow_down":
			e.Temporary = true
		case e.StatusCode >= 500 || e.StatusCode == http.StatusTooManyRequests || e.StatusCode == http.StatusRequestTimeout:
			e.Temporary = true // whatever non-standard code comes with it
		}
		return e
	}
	if errors.Is(err, ErrBadTokenResponse) {
		return err
	}
	if errors.Is(err, errTokenRedirect) {
		return &TokenError{Err: err} // permanent: the endpoint will redirect again
	}
	for _, p := range unparseableResponse {
		if strings.HasPrefix(err.Error(), p) {
			return fmt.Errorf("%w: %v", ErrBadTokenResponse, err)
		}
	}
	if f := networkFailure(err); f != classify.NotNetwork {
		return &TokenError{Temporary: !f.Permanent(), Err: err}
	}
	return err
}

// answerLine is the gist of an answer that is not an OAuth error: an HTML
// page's title, else the first line of text; "" for anything else.
func answerLine(body []byte) string {
	s := strings.TrimSpace(string(body[:min(len(body), 4096)]))
	if i := strings.Index(strings.ToLower(s), "<title>"); i >= 0 {
		s = s[i+len("<title>"):]
		if j := strings.Index(s, "<"); j >= 0 {
			s = s[:j]
		}
		return strings.TrimSpace(s)
	}
	if strings.HasPrefix(s, "<") || strings.HasPrefix(s, "{") {
		return "" // markup or JSON without a title or an error code
	}
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}

// permanentCodes are the error codes of RFC 6749 §5.2.
var permanentCodes = map[string]bool{
	"invalid_request": true, "invalid_client": true, "invalid_grant": true,
	"unauthorized_client": true, "unsupported_grant_type": true, "invalid_scope": true,
}

// unparseableResponse start the messages x/oauth2 gives a 2xx answer that
// is not a token (it builds them with errors.New or %v).
var unparseableResponse = []string{
	"oauth2: cannot parse json",
	"oauth2: cannot parse response",
	"oauth2: server response missing access_token",
}

// bodyReadError starts the message x/oauth2 gives a token response whose
// body could not be read (a connection reset or cut mid-body). It formats
// the cause with %v, so nothing but the text is left to recognise it by.
const bodyReadError = "oauth2: cannot fetch token: "

// NetworkFailure tells why no answer came ([classify.NotNetwork] when one did),
// with the rules the Client retries by, so that a program or a
// diagnosis can say what to fix without matching platform errors itself.
func (e *TokenError) NetworkFailure() classify.NetworkFailure {
	if e == nil || e.StatusCode != 0 || e.Code != "" || e.Err == nil || errors.Is(e.Err, errTokenRedirect) {
		return classify.NotNetwork
	}
	return networkFailure(e.Err)
}

// networkFailure classifies a failure to get an answer ([classify.NotNetwork] for
// anything else).
func networkFailure(err error) classify.NetworkFailure {
	switch {
	case isProxyError(err):
		return classify.ProxyFailure
	case isNoSuchHost(err):
		return classify.NoSuchHost
	case isRefused(err):
		return classify.ConnectionRefused
	case isCertificateError(err):
		return classify.CertificateRejected
	case isNotTLS(err):
		return classify.NotTLS
	case isNetworkError(err) || strings.HasPrefix(err.Error(), bodyReadError):
		return classify.OtherNetwork
	}
	return classify.NotNetwork
}

// isNoSuchHost reports whether err says the host name does not exist
// (NXDOMAIN), as opposed to a DNS server that did not answer.
func isNoSuchHost(err error) bool {
	var de *net.DNSError
	return errors.As(err, &de) && de.IsNotFound && !de.IsTimeout && !de.IsTemporary
}

// isRefused reports whether err says the connection was refused: nothing
// listens at the host and port (see Config.RefusedAttempts).
func isRefused(err error) bool {
	return errors.Is(err, connRefusedOS) && !isProxyError(err)
}

// isProxyError reports whether err says the proxy was not reached (net/http
// wraps such failures in a *net.OpError whose Op is "proxyconnect").
func isProxyError(err error) bool {
	var oe *net.OpError
	return errors.As(err, &oe) && oe.Op == "proxyconnect"
}

// isNotTLS reports whether the TLS handshake got an answer that is not
// TLS: net/http's ErrSchemeMismatch when it was plain http, a
// tls.RecordHeaderError when a RoundTripper returned it unchanged.
func isNotTLS(err error) bool {
	var rh tls.RecordHeaderError
	return errors.Is(err, http.ErrSchemeMismatch) || errors.As(err, &rh)
}

// isCertificateError reports whether the TLS handshake failed on the
// server's certificate (unknown authority, expired, wrong host name).
func isCertificateError(err error) bool {
	var ve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var ci x509.CertificateInvalidError
	var he x509.HostnameError
	return errors.As(err, &ve) || errors.As(err, &ua) || errors.As(err, &ci) || errors.As(err, &he)
}

// withAttempts records on a *TokenError how many requests led to it.
func withAttempts(err error, n int) error {
	var te *TokenError
	if n <= 1 || !errors.As(err, &te) || te.Attempts > 0 {
		// Counted already: a Source that is itself a Client (awscreds'
		// web identity) counted its token requests; asking it again while
		// it holds its failure makes none.
		return err
	}
	c := *te
	c.Attempts = n
	if err == error(te) {
		return &c
	}
	// Wrapped (an attempt timeout): keep the chain, with the counted copy
	// first so that errors.As finds it.
	return &attemptsError{te: &c, err: err, n: n}
}

// attemptsError is a wrapped *TokenError with its attempts counted.
type attemptsError struct {
	te  *TokenError
	err error
	n   int
}

func (e *attemptsError) Error() string   { return fmt.Sprintf("%v (after %d attempts)", e.err, e.n) }
func (e *attemptsError) Unwrap() []error { return []error{e.te, e.err} }

func isNetworkError(err error) bool {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, errAttemptTimeout) {
		return true
	}
	var pe *fs.PathError
	var ue *url.Error
	var oe *net.OpError
	if errors.As(err, &pe) && !errors.As(err, &ue) && !errors.As(err, &oe) {
		return false // a file a Source read (it has a Timeout method too)
	}
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) {
		return true // *url.Error, *net.OpError and friends
	}
	return false
}

// isTemporary reports whether a fetch error is worth another attempt.
func isTemporary(err error) bool {
	var te *TokenError
	return errors.As(err, &te) && te.Temporary
}

func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		if s < 0 {
			return 0
		}
		return min(time.Duration(s)*time.Second, time.Hour)
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), time.Hour)
	}
	return 0
}
