package awscreds

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/secretfile"
	"github.com/tokenmgr/tokenmgr/store/record"
)

// TokenType is the token type of the store record that holds AWS
// credentials.
const TokenType = "AWS4-HMAC-SHA256"

// STSError is an error answer from STS, as the SDK decoded it, or, with
// no StatusCode and no Code, a request that got no answer (Message says
// what the connection did: refused, timed out, no such host). It
// unwraps to a *tokenmgr.TokenError (which says whether it is temporary,
// for the refresh engine's backoff), so errors.As finds either. Its
// message never carries the web identity token (it is blanked if STS
// quotes it).
type STSError struct {
	Code       string // "InvalidIdentityToken", "ExpiredTokenException", "AccessDenied", …
	Message    string
	StatusCode int    // HTTP status, 0 when no answer came
	RequestID  string // x-amzn-RequestId, for AWS support

	te *tokenmgr.TokenError
}

// Unwrap returns the *tokenmgr.TokenError the refresh engine judges.
func (e *STSError) Unwrap() error {
	if e.te == nil {
		return nil
	}
	return e.te
}

// Error names STS, the status, the code and STS's message.
func (e *STSError) Error() string {
	var b strings.Builder
	b.WriteString("awscreds: STS AssumeRoleWithWebIdentity")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, " answered %d", e.StatusCode)
	}
	if e.Code != "" {
		b.WriteString(" ")
		b.WriteString(e.Code)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// ErrRedirect is matched (errors.Is) by a [*RedirectError]: the STS
// endpoint answered with a redirect.
var ErrRedirect = errors.New("awscreds: STS endpoint answered a redirect")

// RedirectError is returned when the STS endpoint answers
// AssumeRoleWithWebIdentity with a redirect (an HTTP 3xx status, such as
// 307 Temporary Redirect with a Location on another host), and so is a
// signed call through [NoRedirectClient] (tokenmgr doctor's
// GetCallerIdentity). The redirect is never followed: the request carries the web identity token (or, signed, the session
// token), which goes to the endpoint configured and nowhere else. Nor is
// it retried: the endpoint will redirect again until its configuration
// (Config.STSEndpoint, AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL) is mended.
// It matches [ErrRedirect] and unwraps to a permanent
// *tokenmgr.TokenError (with the status), so errors.As finds either; it
// never carries the web identity token.
type RedirectError struct {
	Endpoint   string // the URL asked, scheme://host/path
	StatusCode int    // the HTTP status, 3xx
	// Location is where the redirect pointed, resolved against Endpoint,
	// without user information, query or fragment; empty when absent.
	Location string

	// Carries names what the request carried, and so was not sent on:
	// "the web identity token" (AssumeRoleWithWebIdentity) or "the
	// session token" (a signed call through [NoRedirectClient]).
	Carries string

	te *tokenmgr.TokenError
}

// Error names the endpoint, the status and the Location.
func (e *RedirectError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "awscreds: STS endpoint %s answered %d", e.Endpoint, e.StatusCode)
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" ")
		b.WriteString(t)
	}
	if e.Location != "" {
		b.WriteString(" to ")
		b.WriteString(e.Location)
	}
	b.WriteString("; not followed: the request carries ")
	b.WriteString(cmp.Or(e.Carries, "the web identity token"))
	return b.String()
}

// Is matches [ErrRedirect].
func (e *RedirectError) Is(target error) bool { return target == ErrRedirect }

// Unwrap returns the permanent *tokenmgr.TokenError the refresh engine
// judges.
func (e *RedirectError) Unwrap() error {
	if e.te == nil {
		return nil
	}
	return e.te
}

// noRedirects reaches STS through hc, which follows no redirect: a 3xx
// answer becomes a *RedirectError. Every call to STS goes through one
// (AssumeRoleWithWebIdentity, and doctor's signed GetCallerIdentity): net/http drops Authorization on a redirect to
// another host, but not X-Amz-Security-Token, nor a form body.
type noRedirects struct {
	hc      *http.Client
	carries string // for RedirectError; empty: the web identity token
}

// NoRedirectClient returns the aws.HTTPClient every call to STS goes
// through (nil c: the AWS SDK's default transport): a copy of c that
// follows no redirect, whatever its CheckRedirect says, and turns a 3xx
// answer into a [*RedirectError] saying the request carried carries ("the
// session token" for a signed call): net/http would send
// X-Amz-Security-Token, or a form body, on to another host. Answers are
// read up to 1 MiB.
func NoRedirectClient(c *http.Client, carries string) aws.HTTPClient {
	n := stsHTTPClient(c)
	n.carries = carries
	return n
}

// stsHTTPClient returns what reaches STS: user (the AWS SDK's default
// transport when nil), copied so that it follows no redirect, whatever its
// CheckRedirect says (user itself is not modified).
func stsHTTPClient(user *http.Client) noRedirects {
	var c http.Client
	if user != nil {
		c = *user
	} else {
		c.Transport = awshttp.NewBuildableClient().GetTransport()
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return noRedirects{hc: &c}
}

// maxSTSAnswer bounds what is read of an answer from STS: its answers
// are a few KiB (credentials, or an error code and message); a body past
// this is not read on (an *http.MaxBytesError, permanent).
const maxSTSAnswer = 1 << 20

// Do sends req, and turns a redirect into a *RedirectError. The body of
// the answer reads up to maxSTSAnswer bytes.
func (n noRedirects) Do(req *http.Request) (*http.Response, error) {
	resp, err := n.hc.Do(req)
	if err == nil && resp.Body != nil {
		resp.Body = http.MaxBytesReader(nil, resp.Body, maxSTSAnswer)
	}
	if err != nil || resp.StatusCode < 300 || resp.StatusCode > 399 {
		return resp, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // so the connection can be reused
	resp.Body.Close()
	u := *req.URL
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	re := &RedirectError{Endpoint: u.String(), StatusCode: resp.StatusCode, Carries: cmp.Or(n.carries, "the web identity token")}
	if resp.Header.Get("Location") != "" {
		if loc, err := resp.Location(); err == nil {
			loc.User, loc.RawQuery, loc.ForceQuery, loc.Fragment = nil, "", false, ""
			re.Location = loc.String() // redacted and cut by stsError
		} else {
			re.Location = "(unparseable)"
		}
	}
	re.te = &tokenmgr.TokenError{StatusCode: re.StatusCode, Description: "redirect not followed", Err: ErrRedirect}
	return nil, re
}

// temporarySTSCodes are STS error codes worth another attempt: the SDK's
// throttle codes STS uses (aws/retry DefaultThrottleErrorCodes) and the
// one it adds for AssumeRoleWithWebIdentity (service/sts
// finalizeSTSRetryableErrors).
var temporarySTSCodes = map[string]bool{
	"IDPCommunicationError": true, "Throttling": true, "ThrottlingException": true,
	"RequestLimitExceeded": true, "ServiceUnavailable": true, "InternalFailure": true,
}

// STSClient is what a Provider calls STS with, one method, as
// aws-sdk-go-v2's stscreds takes it (AssumeRoleWithWebIdentityAPIClient):
// an *sts.Client has it. Set [Config.STSClient] to give a Provider one of
// your own (an STS client with your middleware, or a fake in a test).
type STSClient interface {
	AssumeRoleWithWebIdentity(ctx context.Context, params *sts.AssumeRoleWithWebIdentityInput,
		optFns ...func(*sts.Options)) (*sts.AssumeRoleWithWebIdentityOutput, error)
}

// stsSource asks STS for new credentials on every call. The Client around
// it does the caching, refresh-ahead, locking and backoff; the SDK's own
// retries are off so that there is one retry policy.
type stsSource struct {
	client    STSClient
	roleARN   string
	session   string
	duration  time.Duration
	tokenFile string
	ts        oauth2.TokenSource
	fp        string
	desc      string

	// dropWebIdentity, when set, tells ts that STS refused a token it
	// gave (expired or invalid), so that it fetches a new one.
	dropWebIdentity func(*oauth2.Token)
}

func newSTSSource(cfg *Config, endpoint, region string) *stsSource {
	opts := sts.Options{
		Region:  region,
		Retryer: aws.NopRetryer{},
	}
	if endpoint != "" {
		opts.BaseEndpoint = aws.String(endpoint)
	}
	opts.HTTPClient = stsHTTPClient(cfg.HTTPClient)
	client := cfg.STSClient
	if client == nil {
		client = sts.New(opts)
	}
	s := &stsSource{
		client:    client,
		roleARN:   cfg.RoleARN,
		session:   cfg.RoleSessionName,
		duration:  cfg.Duration,
		tokenFile: cfg.WebIdentityTokenFile,
		ts:        cfg.WebIdentity,
	}
	if inv, ok := cfg.WebIdentity.(interface{ Invalidate(*oauth2.Token) }); ok {
		s.dropWebIdentity = inv.Invalidate
	}
	from := "token_source"
	if s.tokenFile != "" {
		from = "file:" + s.tokenFile
	}
	h := sha256.New()
	for _, v := range []string{"aws_web_identity", s.roleARN, s.session, endpoint, region, strconv.FormatInt(int64(s.duration/time.Second), 10), from} {
		h.Write([]byte(v))
		h.Write([]byte{0})
	}
	s.fp = hex.EncodeToString(h.Sum(nil)[:12])
	s.desc = "AWS role " + s.roleARN
	if s.session != "" {
		s.desc += ", session " + s.session
	}
	if region != "" {
		s.desc += ", region " + region
	}
	return s
}

// Fingerprint identifies the configuration (role, session name, endpoint,
// region, duration, where the web identity comes from), never a secret, so
// a stored credential is adopted only by the configuration that fetched it.
func (s *stsSource) Fingerprint() string { return s.fp }

// Description names the configuration for people: the role, session name
// and region. The root Client stores it with the credentials and names it
// when it refuses to overwrite them with another configuration's.
func (s *stsSource) Description() string { return s.desc }

// fetch calls AssumeRoleWithWebIdentity with a web identity token read
// afresh (the file is re-read each time: kubelet and GitHub rotate it).
func (s *stsSource) fetch(ctx context.Context) (aws.Credentials, error) {
	wit, witTok, err := s.webIdentity()
	if err != nil {
		return aws.Credentials{}, err
	}
	in := &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(s.roleARN),
		RoleSessionName:  aws.String(s.session),
		WebIdentityToken: aws.String(wit),
	}
	if s.duration > 0 {
		in.DurationSeconds = aws.Int32(int32(s.duration / time.Second))
	}
	// A panic in the call (Config.HTTPClient's transport, say) may quote
	// the request, whose body holds the web identity token; the Cache that
	// turns the panic into an error knows the credentials' secrets, not it.
	defer func() {
		if r := recover(); r != nil {
			panic(redact(redact(fmt.Sprint(r), wit), url.QueryEscape(wit)))
		}
	}()
	out, err := s.client.AssumeRoleWithWebIdentity(ctx, in)
	if err != nil {
		err = stsError(err, wit)
		var se *STSError
		if witTok != nil && s.dropWebIdentity != nil && errors.As(err, &se) &&
			(se.Code == "ExpiredTokenException" || se.Code == "InvalidIdentityToken") {
			// STS refused the token itself: the source must not hand it out
			// again at the next attempt.
			s.dropWebIdentity(witTok)
		}
		return aws.Credentials{}, err
	}
	c := out.Credentials
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil || c.SessionToken == nil || c.Expiration == nil ||
		*c.AccessKeyId == "" || *c.SecretAccessKey == "" || *c.SessionToken == "" {
		return aws.Credentials{}, fmt.Errorf("%w: STS answered without complete credentials", tokenmgr.ErrBadTokenResponse)
	}
	if err := checkCredentials(*c.AccessKeyId, *c.SecretAccessKey, *c.SessionToken, *c.Expiration, time.Now()); err != nil {
		return aws.Credentials{}, err
	}
	return aws.Credentials{
		AccessKeyID: *c.AccessKeyId, SecretAccessKey: *c.SecretAccessKey, SessionToken: *c.SessionToken,
		Source: CredentialSource, CanExpire: true, Expires: *c.Expiration,
	}, nil
}

// kind is what the Provider's tokenmgr.Cache knows of its credentials:
// they come from STS, the session token tells them apart, and the store
// keeps them as a record whose access token is the session token, with
// the key pair beside it (the layout every tokenmgr has written).
func (s *stsSource) kind() tokenmgr.Kind[aws.Credentials] {
	return tokenmgr.Kind[aws.Credentials]{
		Fetch: s.fetch,
		ID:    func(c aws.Credentials) string { return c.SessionToken },
		Expiry: func(c aws.Credentials) time.Time {
			if !c.CanExpire {
				return time.Time{}
			}
			return c.Expires
		},
		Secrets:     func(c aws.Credentials) []string { return []string{c.SecretAccessKey} },
		Record:      credentialsRecord,
		FromRecord:  recordCredentials,
		Fingerprint: s.fp,
		Description: s.desc,
	}
}

// credentialsRecord is c's store record, obtained at obtained.
func credentialsRecord(c aws.Credentials, obtained time.Time) *record.Record {
	r := &record.Record{
		V: record.Version, AccessToken: c.SessionToken, TokenType: TokenType, Obtained: obtained,
		AWSAccessKeyID: c.AccessKeyID, AWSSecretAccessKey: c.SecretAccessKey,
	}
	if c.CanExpire {
		r.Expiry = c.Expires
	}
	return r
}

// recordCredentials returns the credentials r holds: none without a
// session token, an error when the key pair is missing or would fail
// every request (a corrupt store: STS would not have answered it).
func recordCredentials(r *record.Record) (aws.Credentials, bool, error) {
	switch {
	case r.AccessToken == "":
		return aws.Credentials{}, false, nil
	case r.AWSAccessKeyID == "" || r.AWSSecretAccessKey == "":
		return aws.Credentials{}, false, errors.New("the record holds no AWS key pair")
	}
	if what := badKeys(r.AWSAccessKeyID, r.AWSSecretAccessKey, r.AccessToken); what != "" {
		return aws.Credentials{}, false, errors.New("the record holds " + what)
	}
	return aws.Credentials{
		AccessKeyID: r.AWSAccessKeyID, SecretAccessKey: r.AWSSecretAccessKey, SessionToken: r.AccessToken,
		Source: CredentialSource, CanExpire: !r.Expiry.IsZero(), Expires: r.Expiry,
	}, true, nil
}

// Bounds on the credentials STS answers with, far above what it gives
// (a 20-character key ID, a 40-character secret, a session token of a few
// KiB) and below what would make every signed request fail (a header too
// large for the service) or fill a store.
const (
	maxKeyID        = 128
	maxSecretKey    = 256
	maxSessionToken = 16 << 10
	// maxSessionLife is the longest any AWS session lasts (36 hours, for
	// GetSessionToken; AssumeRole* give 12 at most).
	maxSessionLife = 36 * time.Hour
)

// checkCredentials refuses credentials that would fail every request or
// never be replaced: an expiry already past or beyond any AWS session
// (0001-01-01 is what a missing Expiration decodes to), a key ID that is
// not a word, parts too large, bytes that cannot go in a header.
func checkCredentials(id, secret, session string, exp, now time.Time) error {
	bad := func(what string) error { return fmt.Errorf("%w: STS answered %s", tokenmgr.ErrBadTokenResponse, what) }
	switch {
	case !exp.After(now):
		return bad("credentials that have expired (Expiration " + exp.UTC().Format(time.RFC3339) + ")")
	case exp.Sub(now) > maxSessionLife:
		return bad("credentials that expire after more than 36 hours (Expiration " + exp.UTC().Format(time.RFC3339) + ")")
	}
	if what := badKeys(id, secret, session); what != "" {
		return bad(what)
	}
	return nil
}

// badKeys says what of a key ID, secret and session token would fail
// every request ("" when nothing): a fetch's and a stored record's rule.
func badKeys(id, secret, session string) string {
	switch {
	case len(id) > maxKeyID || strings.ContainsFunc(id, func(r rune) bool { return !(r == '_' || r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r))) }):
		return fmt.Sprintf("an AccessKeyId that is not up to %d letters and digits", maxKeyID)
	case len(secret) > maxSecretKey:
		return fmt.Sprintf("a SecretAccessKey longer than %d bytes", maxSecretKey)
	case len(session) > maxSessionToken:
		return fmt.Sprintf("a SessionToken of %d KiB (more than %d KiB)", len(session)>>10, maxSessionToken>>10)
	case strings.ContainsFunc(secret+session, func(r rune) bool { return r <= ' ' || r >= 0x7f }):
		return "a SecretAccessKey or SessionToken with bytes other than visible ASCII"
	}
	return ""
}

// maxTokenFile bounds what is read of a web identity token file.
const maxTokenFile = 64 << 10

func (s *stsSource) webIdentity() (string, *oauth2.Token, error) {
	if s.tokenFile != "" {
		t, err := ReadTokenFile(s.tokenFile)
		return t, nil, err
	}
	tok, err := safeToken(s.ts)
	if err != nil {
		return "", nil, fmt.Errorf("awscreds: getting the web identity token: %w", err)
	}
	if tok == nil || tok.AccessToken == "" {
		return "", nil, errors.New("awscreds: the web identity token source returned no token")
	}
	return tok.AccessToken, tok, nil
}

// ErrWebIdentityFile is matched (errors.Is) by the error of a web identity
// token file that cannot be read, is not a regular file, or is empty.
var ErrWebIdentityFile = errors.New("awscreds: web identity token file")

// tokenFileError is the error of a web identity token file that cannot
// be read, or is empty.
type tokenFileError struct{ err error } // an *fs.PathError

func (e *tokenFileError) Error() string { return "awscreds: web identity token file: " + e.err.Error() }

func (e *tokenFileError) Unwrap() error { return e.err }

// Is matches [ErrWebIdentityFile].
func (e *tokenFileError) Is(target error) bool { return target == ErrWebIdentityFile }

// ReadTokenFile reads the web identity token from path as a Provider does
// at each refresh, by the rule of the root package's _FILE variables
// (package secretfile): a regular file (a directory or a named pipe is
// refused at once, a pipe not waited on), of at most 64 KiB, trimmed, not
// empty. Its error matches [ErrWebIdentityFile].
func ReadTokenFile(path string) (string, error) {
	b, err := secretfile.Read(path, maxTokenFile)
	if err != nil {
		return "", &tokenFileError{err}
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", &tokenFileError{&fs.PathError{Op: "read", Path: path, Err: errors.New("file is empty")}}
	}
	return t, nil
}

// safeToken calls ts, turning a panic into an error.
func safeToken(ts oauth2.TokenSource) (tok *oauth2.Token, err error) {
	defer func() {
		if r := recover(); r != nil {
			tok, err = nil, fmt.Errorf("awscreds: web identity token source panicked: %v", r)
		}
	}()
	return ts.Token()
}

// stsError turns what the SDK returned into a *RedirectError, an
// *STSError (an answer) or a *tokenmgr.TokenError wrapping the network
// error, marked temporary when another attempt may succeed (by the root
// library's rule: not for no such host nor an untrusted certificate),
// with the web identity token blanked.
func stsError(err error, wit string) error {
	var rde *RedirectError
	if errors.As(err, &rde) {
		// Not an answer from STS, nor a network error to retry.
		rde.Location = display.Cut(redact(rde.Location, wit), 200)
		return rde
	}
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		// Not STS as it answers (a proxy's page, a wrong endpoint); the
		// SDK's message may quote the body, so it is not kept.
		return &tokenmgr.TokenError{Description: fmt.Sprintf("STS answer larger than %d KiB, not read", maxSTSAnswer>>10), Err: tokenmgr.ErrBadTokenResponse}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		// What STS says is cut to a line's length and made printable, as
		// the token endpoint's error is (display.Printable); the web
		// identity token is blanked before the cut, which could halve it.
		se := &STSError{Code: display.Printable(ae.ErrorCode(), 100), Message: display.Printable(redact(ae.ErrorMessage(), wit), maxSTSMessage)}
		var re interface{ HTTPStatusCode() int }
		if errors.As(err, &re) {
			se.StatusCode = re.HTTPStatusCode()
		}
		var rid interface{ ServiceRequestID() string }
		if errors.As(err, &rid) {
			se.RequestID = rid.ServiceRequestID()
		}
		te := &tokenmgr.TokenError{Code: se.Code, Description: display.Cut(se.Message, 200), StatusCode: se.StatusCode}
		se.RequestID = display.Printable(se.RequestID, 100)
		se.te = te
		te.Temporary = temporarySTSCodes[se.Code] || se.StatusCode >= 500 || se.StatusCode == http.StatusTooManyRequests
		var hr interface{ HTTPResponse() *smithyhttp.Response }
		if errors.As(err, &hr) && hr.HTTPResponse() != nil && hr.HTTPResponse().Response != nil {
			te.RetryAfter = retryAfter(hr.HTTPResponse().Header.Get("Retry-After"))
		}
		return se
	}
	re := &redactedError{msg: display.Printable(redact(err.Error(), wit), 1000), err: err}
	var se *smithyhttp.RequestSendError
	var ne interface{ Timeout() bool }
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return re // the Client tells its own deadline from the caller's
	}
	if errors.As(err, &se) || errors.As(err, &ne) || errors.Is(err, io.ErrUnexpectedEOF) {
		// The root library's rule (TokenError.NetworkFailure): a host name
		// that does not exist or a certificate this machine does not trust
		// will fail again, so it is returned at once with its cause rather
		// than retried until the caller's deadline.
		te := &tokenmgr.TokenError{Err: re}
		te.Temporary = !te.NetworkFailure().Permanent()
		// No answer came: an *STSError with no status, saying STS and
		// what the connection did (Post "…": dial tcp …: connection
		// refused), not the SDK's "https response error StatusCode: 0"
		// nor the TokenError's "token endpoint".
		msg := re.msg
		if se != nil && se.Err != nil {
			msg = display.Printable(redact(se.Err.Error(), wit), 1000)
		}
		return &STSError{Message: msg, te: te}
	}
	return re
}

// maxSTSMessage bounds the STS message an *STSError keeps.
const maxSTSMessage = 300

// redactedError keeps an error's chain under a message with the web
// identity token blanked.
type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

func retryAfter(v string) time.Duration {
	s, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || s <= 0 {
		return 0
	}
	return min(time.Duration(s)*time.Second, time.Hour)
}

func redact(s, secret string) string {
	if len(secret) < 4 {
		return s
	}
	return strings.ReplaceAll(s, secret, "[REDACTED]")
}
