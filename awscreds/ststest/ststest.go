// Package ststest is an in-process AWS STS and AWS service for tests, in
// the style of net/http/httptest: AssumeRoleWithWebIdentity as STS speaks
// it on the wire (form POST, XML answers, <ErrorResponse> errors), and a
// signed endpoint that verifies the SigV4 signature of every request it
// gets, written from the AWS specification (canonical request, string to
// sign, HMAC key chain) rather than with a signer, with sessions that can
// be revoked, expired early or all rejected.
//
// Signed requests are answered by service, as the real ones answer:
// STS (Action=GetCallerIdentity) with query-protocol XML and
// <ErrorResponse><Error><Code> errors; "s3" with <Error><Code> documents;
// any other service with JSON {"__type": …} errors, and a 200 JSON body
// naming the caller on success.
package ststest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Account is the account ID of every role and session.
const Account = "123456789012"

// Error is an error answer: an AWS error code, its message and status.
type Error struct {
	Code    string
	Message string
	Status  int
}

// Error is "Code: Message".
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errors STS answers AssumeRoleWithWebIdentity with.
var (
	// ErrInvalidIdentityToken: the web identity token's issuer, audience
	// or signature does not match the role's trust.
	ErrInvalidIdentityToken = &Error{"InvalidIdentityToken", "Incorrect token audience", 400}
	// ErrExpiredWebIdentity: the web identity token itself has expired.
	ErrExpiredWebIdentity = &Error{"ExpiredTokenException", "Token expired: current date/time 1700000000 must be before the expiration date/time 1600000000", 400}
	// ErrAccessDenied: the role's trust policy does not allow the caller.
	ErrAccessDenied = &Error{"AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403}
	// ErrIDPCommunication: STS could not reach the identity provider.
	ErrIDPCommunication = &Error{"IDPCommunicationError", "Couldn't retrieve verification key from your identity provider", 400}
	// ErrThrottling: too many requests.
	ErrThrottling = &Error{"Throttling", "Rate exceeded", 400}
)

// Session is a set of temporary credentials the server issued.
type Session struct {
	AccessKeyID, SecretAccessKey, SessionToken string
	Expiration                                 time.Time
	WebIdentityToken                           string // the token it was issued for
	RoleSessionName                            string
}

// Server is an STS and a SigV4-verifying AWS service. Like STS, it
// refuses a web identity JWT whose exp has passed by its clock
// (ExpiredTokenException), and dates its answers by that clock. Set its fields
// before the first request.
type Server struct {
	// URL is where the server listens ("http://127.0.0.1:port"), or
	// "http://localhost" for one made by NewHandler.
	URL string
	ts  *httptest.Server

	// Lifetime, when set, is the lifetime of issued credentials whatever
	// DurationSeconds asked (STS's minimum is 15 minutes; tests want
	// seconds).
	Lifetime time.Duration
	// Now is the server's clock (default time.Now); setting it ahead or
	// behind the client's makes clock skew.
	Now func() time.Time
	// CheckWebIdentity, when set, judges the web identity token; a non-nil
	// *Error is STS's answer. Set it before the first request; once the
	// server may be answering, use [Server.SetCheckWebIdentity].
	CheckWebIdentity func(token string) *Error
	// NoGetCallerIdentity answers GetCallerIdentity 501 NotImplemented, as
	// an S3-compatible STS (MinIO) that has AssumeRoleWithWebIdentity but
	// not it.
	NoGetCallerIdentity bool

	mu        sync.Mutex
	sessions  map[string]*sessionState
	fail      []*Error // answers to the next AssumeRoleWithWebIdentity calls
	rejectAll bool

	assumeCalls, signedOK, rejected atomic.Int64
}

type sessionState struct {
	Session
	revoked bool
	expired bool
}

// NewServer starts a Server on a loopback port. Close it when done.
func NewServer() *Server {
	s := NewHandler()
	s.ts = httptest.NewServer(s)
	s.URL = s.ts.URL
	return s
}

// NewHandler returns a Server that does not listen: serve it through
// Client, for tests without a network (testing/synctest bubbles).
func NewHandler() *Server {
	return &Server{URL: "http://localhost", sessions: map[string]*sessionState{}}
}

// Close stops a listening Server. It is a no-op for one from NewHandler.
func (s *Server) Close() {
	if s.ts != nil {
		s.ts.Close()
	}
}

// Client returns an *http.Client that reaches the Server: over loopback
// when it listens, else by calling ServeHTTP in the caller's goroutine.
func (s *Server) Client() *http.Client {
	if s.ts != nil {
		return s.ts.Client()
	}
	return &http.Client{Transport: HandlerTransport(s)}
}

// HandlerTransport returns a RoundTripper that hands each request to h as
// a server would receive it, in the caller's goroutine, without a network.
func HandlerTransport(h http.Handler) http.RoundTripper { return handlerTransport{h} }

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	sr := r.Clone(r.Context())
	if sr.Host == "" {
		sr.Host = r.URL.Host
	}
	sr.RequestURI = r.URL.RequestURI()
	if sr.Body == nil {
		sr.Body = http.NoBody
	} else if r.Body != nil {
		defer r.Body.Close()
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, sr)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// AssumeCalls counts AssumeRoleWithWebIdentity requests (failed ones too;
// not other unsigned requests).
func (s *Server) AssumeCalls() int64 { return s.assumeCalls.Load() }

// SignedOK counts signed requests that passed verification and were served.
func (s *Server) SignedOK() int64 { return s.signedOK.Load() }

// Rejected counts signed requests refused (bad signature or credentials).
func (s *Server) Rejected() int64 { return s.rejected.Load() }

// Sessions returns the sessions issued so far, oldest first.
func (s *Server) Sessions() []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Session, 0, len(s.sessions))
	for _, st := range s.sessions {
		out = append(out, st.Session)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Expiration.Before(out[j].Expiration) || (out[i].Expiration.Equal(out[j].Expiration) && out[i].AccessKeyID < out[j].AccessKeyID)
	})
	return out
}

// Revoke makes requests signed with the session of accessKeyID fail with
// InvalidClientTokenId (or the service's equivalent), as after a
// revocation of the role's sessions.
func (s *Server) Revoke(accessKeyID string) {
	s.set(accessKeyID, func(st *sessionState) { st.revoked = true })
}

// RevokeAll revokes every session issued so far.
func (s *Server) RevokeAll() { s.set("", func(st *sessionState) { st.revoked = true }) }

// Expire makes the server see the session of accessKeyID as expired
// (ExpiredToken) before its Expiration, as with clock skew.
func (s *Server) Expire(accessKeyID string) {
	s.set(accessKeyID, func(st *sessionState) { st.expired = true })
}

// ExpireAll expires every session issued so far.
func (s *Server) ExpireAll() { s.set("", func(st *sessionState) { st.expired = true }) }

// RejectAll makes every signed request fail with InvalidClientTokenId,
// fresh sessions included (a role in another account), until called with
// false.
func (s *Server) RejectAll(on bool) {
	s.mu.Lock()
	s.rejectAll = on
	s.mu.Unlock()
}

// SetCheckWebIdentity sets CheckWebIdentity safely while the server may be
// answering requests (a test's client in another process, say).
func (s *Server) SetCheckWebIdentity(check func(token string) *Error) {
	s.mu.Lock()
	s.CheckWebIdentity = check
	s.mu.Unlock()
}

// FailNext makes the next AssumeRoleWithWebIdentity calls answer errs, in
// order.
func (s *Server) FailNext(errs ...*Error) {
	s.mu.Lock()
	s.fail = append(s.fail, errs...)
	s.mu.Unlock()
}

func (s *Server) set(id string, f func(*sessionState)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, st := range s.sessions {
		if id == "" || k == id {
			f(st)
		}
	}
}

// ServeHTTP answers AssumeRoleWithWebIdentity (unsigned, as STS takes it)
// and signed requests.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Date", s.now().UTC().Format(http.TimeFormat))
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeErr(w, "sts", &Error{"InternalFailure", "reading the body", 500})
		return
	}
	if r.Header.Get("Authorization") == "" {
		s.assume(w, r, body)
		return
	}
	s.signed(w, r, body)
}

func (s *Server) assume(w http.ResponseWriter, r *http.Request, body []byte) {
	form, err := url.ParseQuery(string(body))
	if r.Method != http.MethodPost || err != nil || form.Get("Action") != "AssumeRoleWithWebIdentity" {
		writeErr(w, "sts", &Error{"MissingAuthenticationToken", "Request is missing Authentication Token", 403})
		return
	}
	s.assumeCalls.Add(1)
	if form.Get("Version") != "2011-06-15" {
		writeErr(w, "sts", &Error{"InvalidAction", "Could not find operation AssumeRoleWithWebIdentity for version " + form.Get("Version"), 400})
		return
	}
	arn, name, wit := form.Get("RoleArn"), form.Get("RoleSessionName"), form.Get("WebIdentityToken")
	dur := 3600
	if v := form.Get("DurationSeconds"); v != "" {
		if dur, err = strconv.Atoi(v); err != nil || dur < 900 || dur > 43200 {
			writeErr(w, "sts", &Error{"ValidationError", "1 validation error detected: Value at 'durationSeconds' failed to satisfy constraint", 400})
			return
		}
	}
	switch {
	case !strings.HasPrefix(arn, "arn:aws:iam::") || !strings.Contains(arn, ":role/"):
		writeErr(w, "sts", &Error{"ValidationError", "Request ARN is invalid", 400})
		return
	case len(name) < 2 || len(name) > 64:
		writeErr(w, "sts", &Error{"ValidationError", "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint", 400})
		return
	case len(wit) < 4:
		writeErr(w, "sts", &Error{"ValidationError", "1 validation error detected: Value at 'webIdentityToken' failed to satisfy constraint", 400})
		return
	}
	s.mu.Lock()
	var fail *Error
	if len(s.fail) > 0 {
		fail, s.fail = s.fail[0], s.fail[1:]
	}
	check := s.CheckWebIdentity
	s.mu.Unlock()
	if fail == nil && check != nil {
		fail = check(wit)
	}
	if exp, ok := jwtExpiry(wit); fail == nil && ok && !s.now().Before(exp) {
		fail = &Error{"ExpiredTokenException", fmt.Sprintf("Token expired: current date/time %d must be before the expiration date/time %d", s.now().Unix(), exp.Unix()), 400}
	}
	if fail != nil {
		writeErr(w, "sts", fail)
		return
	}
	life := time.Duration(dur) * time.Second
	if s.Lifetime > 0 {
		life = s.Lifetime
	}
	sess := Session{
		AccessKeyID:      "ASIA" + strings.ToUpper(randHex(8)),
		SecretAccessKey:  randHex(20),
		SessionToken:     "FwoGZXIvYXdzE" + randBase64(100), // STS's are base64: + / and = padding
		Expiration:       s.now().Add(life).UTC(),
		WebIdentityToken: wit,
		RoleSessionName:  name,
	}
	s.mu.Lock()
	s.sessions[sess.AccessKeyID] = &sessionState{Session: sess}
	s.mu.Unlock()
	role := arn[strings.Index(arn, ":role/")+6:]
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", randHex(8))
	fmt.Fprintf(w, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <SubjectFromWebIdentityToken>system:serviceaccount:default:app</SubjectFromWebIdentityToken>
    <Audience>sts.amazonaws.com</Audience>
    <AssumedRoleUser>
      <Arn>arn:aws:sts::%s:assumed-role/%s/%s</Arn>
      <AssumedRoleId>AROA3XFRBF535PLBIFPI4:%s</AssumedRoleId>
    </AssumedRoleUser>
    <Credentials>
      <SessionToken>%s</SessionToken>
      <SecretAccessKey>%s</SecretAccessKey>
      <Expiration>%s</Expiration>
      <AccessKeyId>%s</AccessKeyId>
    </Credentials>
    <Provider>oidc.example.com</Provider>
  </AssumeRoleWithWebIdentityResult>
  <ResponseMetadata>
    <RequestId>ad4156e9-bce1-11e2-82e6-6b6efEXAMPLE</RequestId>
  </ResponseMetadata>
</AssumeRoleWithWebIdentityResponse>`, Account, html.EscapeString(role), html.EscapeString(name), html.EscapeString(name),
		sess.SessionToken, sess.SecretAccessKey, sess.Expiration.Format("2006-01-02T15:04:05.000Z"), sess.AccessKeyID)
}

func (s *Server) signed(w http.ResponseWriter, r *http.Request, body []byte) {
	a, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil {
		s.rejected.Add(1)
		writeErr(w, "sts", &Error{"IncompleteSignature", err.Error(), 400})
		return
	}
	svc := a.Service
	reject := func(e *Error) {
		s.rejected.Add(1)
		writeErr(w, svc, e)
	}
	s.mu.Lock()
	st, ok := s.sessions[a.AccessKeyID]
	var sess sessionState
	if ok {
		sess = *st
	}
	rejectAll := s.rejectAll
	s.mu.Unlock()
	if !ok {
		reject(invalidKey(svc))
		return
	}
	if err := Verify(r, body, a, sess.SecretAccessKey, s.now()); err != nil {
		var e *Error
		if !errors.As(err, &e) {
			e = &Error{"SignatureDoesNotMatch", err.Error(), 403}
		}
		reject(e)
		return
	}
	switch {
	case r.Header.Get("X-Amz-Security-Token") != sess.SessionToken:
		reject(invalidToken(svc))
	case rejectAll || sess.revoked:
		reject(invalidToken(svc))
	case sess.expired || !s.now().Before(sess.Expiration):
		reject(expired(svc))
	default:
		s.signedOK.Add(1)
		s.serve(w, r, body, svc, sess.Session)
	}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request, body []byte, svc string, sess Session) {
	if svc == "sts" {
		form, _ := url.ParseQuery(string(body))
		if form.Get("Action") == "GetCallerIdentity" && s.NoGetCallerIdentity {
			writeErr(w, "sts", &Error{"NotImplemented", "A header you provided implies functionality that is not implemented", 501})
			return
		}
		if form.Get("Action") == "GetCallerIdentity" {
			w.Header().Set("Content-Type", "text/xml")
			fmt.Fprintf(w, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::%s:assumed-role/app/%s</Arn>
    <UserId>AROA3XFRBF535PLBIFPI4:%s</UserId>
    <Account>%s</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>`, Account, html.EscapeString(sess.RoleSessionName), html.EscapeString(sess.RoleSessionName), Account)
			return
		}
	}
	sum := sha256.Sum256(body)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"service": svc, "method": r.Method, "path": r.URL.Path, "access_key_id": sess.AccessKeyID,
		"body_sha256": hex.EncodeToString(sum[:]),
	})
}

func invalidKey(svc string) *Error {
	switch svc {
	case "s3":
		return &Error{"InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.", 403}
	case "sts":
		return &Error{"InvalidClientTokenId", "The security token included in the request is invalid.", 403}
	}
	return &Error{"UnrecognizedClientException", "The security token included in the request is invalid.", 400}
}

func invalidToken(svc string) *Error {
	switch svc {
	case "s3":
		return &Error{"InvalidToken", "The provided token is malformed or otherwise invalid.", 400}
	case "sts":
		return &Error{"InvalidClientTokenId", "The security token included in the request is invalid", 403}
	}
	return &Error{"UnrecognizedClientException", "The security token included in the request is invalid.", 400}
}

func expired(svc string) *Error {
	switch svc {
	case "s3":
		return &Error{"ExpiredToken", "The provided token has expired.", 400}
	case "sts":
		return &Error{"ExpiredToken", "The security token included in the request is expired", 403}
	}
	return &Error{"ExpiredTokenException", "The security token included in the request is expired", 400}
}

// writeErr answers e in the shape svc's protocol uses.
func writeErr(w http.ResponseWriter, svc string, e *Error) {
	rid := randHex(8)
	switch svc {
	case "s3":
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(e.Status)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>%s</Code><Message>%s</Message><RequestId>%s</RequestId><HostId>%s</HostId></Error>`,
			html.EscapeString(e.Code), html.EscapeString(e.Message), rid, rid)
	case "sts":
		w.Header().Set("Content-Type", "text/xml")
		w.Header().Set("X-Amzn-Requestid", rid)
		w.WriteHeader(e.Status)
		typ := "Sender"
		if e.Status >= 500 {
			typ = "Receiver"
		}
		fmt.Fprintf(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>%s</Type>
    <Code>%s</Code>
    <Message>%s</Message>
  </Error>
  <RequestId>%s</RequestId>
</ErrorResponse>`, typ, html.EscapeString(e.Code), html.EscapeString(e.Message), rid)
	default:
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		w.Header().Set("X-Amzn-Requestid", rid)
		w.WriteHeader(e.Status)
		json.NewEncoder(w).Encode(map[string]string{"__type": "com.amazon.coral.service#" + e.Code, "message": e.Message})
	}
}

// jwtExpiry reads the exp claim of a JWT, unverified, as STS checks it.
func jwtExpiry(tok string) (time.Time, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return time.Time{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return time.Time{}, false
	}
	var c struct {
		Exp *float64 `json:"exp"`
	}
	if json.Unmarshal(b, &c) != nil || c.Exp == nil {
		return time.Time{}, false
	}
	return time.Unix(int64(*c.Exp), 0), true
}

func randBase64(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Authorization is a parsed SigV4 Authorization header.
type Authorization struct {
	AccessKeyID, Date, Region, Service string // from the credential scope
	SignedHeaders                      []string
	Signature                          string
}

// ParseAuthorization parses "AWS4-HMAC-SHA256 Credential=AKID/20260102/
// us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date,
// Signature=<64 hex digits>". Its errors quote no value.
func ParseAuthorization(h string) (*Authorization, error) {
	rest, ok := strings.CutPrefix(h, "AWS4-HMAC-SHA256 ")
	if !ok {
		return nil, errors.New("Authorization header does not start with AWS4-HMAC-SHA256")
	}
	var a Authorization
	var cred string
	seen := map[string]bool{}
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || seen[k] {
			return nil, errors.New("Authorization header: malformed or repeated component")
		}
		seen[k] = true
		switch k {
		case "Credential":
			cred = v
		case "SignedHeaders":
			a.SignedHeaders = strings.Split(v, ";")
		case "Signature":
			a.Signature = v
		default:
			return nil, errors.New("Authorization header: unknown component")
		}
	}
	if cred == "" || len(a.SignedHeaders) == 0 || a.Signature == "" {
		return nil, errors.New("Authorization header: Credential, SignedHeaders and Signature are required")
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" || scope[0] == "" || scope[2] == "" || scope[3] == "" {
		return nil, errors.New("Authorization header: Credential is not <key>/<date>/<region>/<service>/aws4_request")
	}
	if _, err := time.Parse("20060102", scope[1]); err != nil {
		return nil, errors.New("Authorization header: credential scope date is not YYYYMMDD")
	}
	a.AccessKeyID, a.Date, a.Region, a.Service = scope[0], scope[1], scope[2], scope[3]
	if len(a.Signature) != 64 {
		return nil, errors.New("Authorization header: Signature is not 64 hex digits")
	}
	if _, err := hex.DecodeString(a.Signature); err != nil {
		return nil, errors.New("Authorization header: Signature is not 64 hex digits")
	}
	for i, n := range a.SignedHeaders {
		if n == "" || n != strings.ToLower(n) || (i > 0 && a.SignedHeaders[i-1] >= n) {
			return nil, errors.New("Authorization header: SignedHeaders not lower-case, sorted and distinct")
		}
	}
	return &a, nil
}

// maxSkew is how far a request's X-Amz-Date may be from the server's clock.
const maxSkew = 15 * time.Minute

// Verify checks the SigV4 signature of r, whose body is body, against the
// secret key, as the specification defines it
// (docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html).
// A request dated more than 15 minutes from now fails with an *Error
// RequestExpired (RequestTimeTooSkewed for s3); a wrong signature with
// SignatureDoesNotMatch. An X-Amz-Content-Sha256 of UNSIGNED-PAYLOAD or
// STREAMING-… is signed as given; the chunk signatures of a streaming body
// are not checked.
func Verify(r *http.Request, body []byte, a *Authorization, secret string, now time.Time) error {
	amzDate := r.Header.Get("X-Amz-Date")
	t, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || amzDate[:8] != a.Date {
		return &Error{"IncompleteSignature", "X-Amz-Date missing, malformed or not the credential scope's date", 400}
	}
	if d := now.Sub(t); d > maxSkew || d < -maxSkew {
		if a.Service == "s3" {
			return &Error{"RequestTimeTooSkewed", "The difference between the request time and the current time is too large.", 403}
		}
		return &Error{"RequestExpired", "Request has expired.", 400}
	}
	signed := map[string]bool{}
	for _, n := range a.SignedHeaders {
		signed[n] = true
	}
	if !signed["host"] || !signed["x-amz-date"] || (r.Header.Get("X-Amz-Security-Token") != "" && !signed["x-amz-security-token"]) {
		return &Error{"SignatureDoesNotMatch", "host, x-amz-date and x-amz-security-token must be signed", 403}
	}
	payload := hex.EncodeToString(sha256Sum(body))
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" {
		if !strings.HasPrefix(h, "UNSIGNED-PAYLOAD") && !strings.HasPrefix(h, "STREAMING-") && h != payload {
			return &Error{"XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.", 400}
		}
		payload = h
	} else if a.Service == "s3" {
		return &Error{"InvalidRequest", "Missing required header for this request: x-amz-content-sha256", 400}
	}
	creq := CanonicalRequest(r, a.SignedHeaders, payload, a.Service == "s3")
	scope := strings.Join([]string{a.Date, a.Region, a.Service, "aws4_request"}, "/")
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sha256Sum([]byte(creq)))
	k := hmacSum([]byte("AWS4"+secret), a.Date)
	k = hmacSum(k, a.Region)
	k = hmacSum(k, a.Service)
	k = hmacSum(k, "aws4_request")
	want := hex.EncodeToString(hmacSum(k, sts))
	if subtle.ConstantTimeCompare([]byte(want), []byte(a.Signature)) != 1 {
		return &Error{"SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided.", 403}
	}
	return nil
}

// CanonicalRequest builds the SigV4 canonical request of r:
// method, canonical URI, canonical query, canonical headers, signed
// headers and payload hash, one a line. The path is URI-encoded once more
// except for S3 (s3path), which signs it as sent.
func CanonicalRequest(r *http.Request, signedHeaders []string, payloadHash string, s3path bool) string {
	var b strings.Builder
	b.WriteString(r.Method)
	b.WriteByte('\n')
	p := r.URL.EscapedPath()
	if p == "" {
		p = "/"
	}
	if !s3path {
		p = uriEncode(p, false)
	}
	b.WriteString(p)
	b.WriteByte('\n')
	b.WriteString(canonicalQuery(r.URL.RawQuery))
	b.WriteByte('\n')
	for _, n := range signedHeaders {
		b.WriteString(n)
		b.WriteByte(':')
		b.WriteString(headerValue(r, n))
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	b.WriteString(strings.Join(signedHeaders, ";"))
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// headerValue is the canonical value of header n: values trimmed, inner
// runs of spaces made one, joined by commas. Go's server keeps Host and
// Content-Length out of the header map.
func headerValue(r *http.Request, n string) string {
	var vals []string
	switch n {
	case "host":
		vals = []string{r.Host}
	case "content-length":
		vals = []string{strconv.FormatInt(r.ContentLength, 10)}
	default:
		vals = r.Header.Values(n)
	}
	for i, v := range vals {
		vals[i] = strings.Join(strings.Fields(v), " ")
	}
	return strings.Join(vals, ",")
}

func canonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	type kv struct{ k, v string }
	var kvs []kv
	for part := range strings.SplitSeq(raw, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, _ = url.QueryUnescape(k)
		v, _ = url.QueryUnescape(v)
		kvs = append(kvs, kv{uriEncode(k, true), uriEncode(v, true)})
	}
	sort.Slice(kvs, func(i, j int) bool {
		if kvs[i].k != kvs[j].k {
			return kvs[i].k < kvs[j].k
		}
		return kvs[i].v < kvs[j].v
	})
	parts := make([]string, len(kvs))
	for i, p := range kvs {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

// uriEncode percent-encodes every byte but the unreserved characters
// A-Z a-z 0-9 - _ . ~ (and '/' unless slash), upper-case hex, as SigV4
// specifies.
func uriEncode(s string, slash bool) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' || (c == '/' && !slash) {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func sha256Sum(b []byte) []byte {
	s := sha256.Sum256(b)
	return s[:]
}

func hmacSum(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

func hashHex(b []byte) string { return hex.EncodeToString(sha256Sum(b)) }
