package awscreds

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/tokenmgr/tokenmgr/damp"
)

// RetryCodes returns the error codes on which a call is given fresh
// credentials and replayed once. aws-sdk-go v1 refreshed on ExpiredToken,
// ExpiredTokenException and RequestExpired (aws/request/retryer.go,
// credsExpiredCodes); aws-sdk-go-v2 refreshes on none. To those this adds
// what services answer for revoked or invalid session credentials:
// InvalidClientTokenId (STS, IAM and the query services),
// UnrecognizedClientException (JSON services: DynamoDB, Lambda),
// InvalidToken and InvalidAccessKeyId (S3 and MinIO, for an expired or
// revoked temporary key) and InvalidTokenId. The credentials a Provider
// hands out are always temporary, so the last ones cannot mean a typo in a
// long-term key.
func RetryCodes() []string { return slices.Clone(retryCodes) }

var retryCodes = []string{
	"InvalidClientTokenId", "UnrecognizedClientException", "ExpiredToken", "ExpiredTokenException",
	"RequestExpired", "InvalidToken", "InvalidTokenId", "InvalidAccessKeyId",
}

// extraTransportCodes are the RetryCodes the root Classifier does not
// already count as an invalid token (it sees RequestExpired as clock skew).
var extraTransportCodes = []string{"RequestExpired", "InvalidTokenId"}

func isRetryCode(code string) bool {
	for _, c := range retryCodes {
		if strings.EqualFold(c, code) {
			return true
		}
	}
	return false
}

// Configure makes cfg use p: cfg.Credentials is set to p itself, not
// wrapped in an aws.CredentialsCache (whose copy would outlive a
// revocation; p caches already), and every service client made from cfg
// gets a middleware around its retry loop that, when a call fails with one
// of RetryCodes, drops the credentials that call was signed with
// (compare-and-swap: credentials another call already replaced are not
// dropped twice), gets fresh ones (one STS call however many calls fail at
// once) and replays the call once, re-signed. A call whose body cannot be
// rewound is not replayed: the next call gets the fresh credentials. When
// even fresh credentials are rejected by a host (a role in the wrong
// account, an opt-in region not enabled), that host's rejections are
// returned as they are for a backoff of 1s doubling to 30s, whether or not
// the bodies can be rewound, rather than cost an STS call per request;
// other hosts are not held back.
func (p *Provider) Configure(cfg *aws.Config) {
	cfg.Credentials = p
	cfg.APIOptions = append(cfg.APIOptions, p.addMiddleware)
}

// RetryMiddlewareID is the ID of the middleware Configure adds.
const RetryMiddlewareID = "tokenmgr.awscreds.RefreshRetry"

// hostMiddlewareID is the ID of the middleware that tells the retry
// middleware which host a call went to.
const hostMiddlewareID = "tokenmgr.awscreds.RecordHost"

func (p *Provider) addMiddleware(stack *middleware.Stack) error {
	if _, ok := stack.Finalize.Get(RetryMiddlewareID); ok {
		return nil
	}
	// The endpoint is resolved inside the retry loop (ResolveEndpointV2),
	// on the loop's copy of the request: the last Finalize middleware
	// notes the host each attempt went to.
	if err := stack.Finalize.Add(recordHost{}, middleware.After); err != nil {
		return err
	}
	// Around the SDK's retry loop, so that its own attempts (throttling,
	// 5xx) are not multiplied, and each replay re-runs identity resolution
	// and signing. The loop sends a clone of the request at each attempt;
	// without it, this middleware clones.
	if _, ok := stack.Finalize.Get("Retry"); ok {
		return stack.Finalize.Insert(&refreshRetry{p: p}, "Retry", middleware.Before)
	}
	return stack.Finalize.Add(&refreshRetry{p: p, clone: true}, middleware.Before)
}

type refreshRetry struct {
	p     *Provider
	clone bool
}

// ID names the middleware in the stack.
func (*refreshRetry) ID() string { return RetryMiddlewareID }

// slot records what a call's last attempt was signed with (Retrieve fills
// it from the context the SDK passes down to identity resolution) and the
// host it went to (recordHost). The attempts of one call run one after
// the other on the caller's goroutine.
type slot struct {
	cv   atomic.Pointer[converted]
	host string // damp.HostKey of the last attempt's URL
}

type slotKey struct{}

// recordHost notes in the call's slot the host its attempt goes to.
type recordHost struct{}

func (recordHost) ID() string { return hostMiddlewareID }

func (recordHost) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
	middleware.FinalizeOutput, middleware.Metadata, error,
) {
	if s, ok := ctx.Value(slotKey{}).(*slot); ok {
		if r, ok := in.Request.(*smithyhttp.Request); ok && r.URL != nil {
			s.host = damp.HostKey(r.URL)
		}
	}
	return next.HandleFinalize(ctx, in)
}

func (m *refreshRetry) HandleFinalize(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (
	middleware.FinalizeOutput, middleware.Metadata, error,
) {
	p := m.p
	s := new(slot)
	ctx = context.WithValue(ctx, slotKey{}, s)
	first := in
	if r, ok := in.Request.(*smithyhttp.Request); ok && m.clone {
		first.Request = r.Clone() // in stays unsigned, for a replay
	}
	out, md, err := next.HandleFinalize(ctx, first)
	code, rejected := rejectionCode(err)
	cv := s.cv.Load()
	if !rejected || cv == nil {
		if err == nil || code != "" {
			p.accepted(s.host) // an answer that is not a rejection
		}
		return out, md, err
	}
	if ctx.Err() != nil {
		return out, md, err
	}
	// As the root transport does: the rejection is noted before anything
	// else, so that a host rejecting every credential is damped whether or
	// not this call can be replayed.
	host := s.host
	if p.damp.Damped(host, p.now()) || p.dampRejection(host, cv, code) {
		p.observeRejected(ctx, host, code, false)
		p.observeHeldOff(ctx, host)
		return out, md, err
	}
	r, isHTTP := in.Request.(*smithyhttp.Request)
	if isHTTP {
		if rewindErr := r.RewindStream(); rewindErr != nil {
			p.invalidate(cv.creds) // the body is gone: the next call gets fresh credentials
			p.observeRejected(ctx, host, code, false)
			return out, md, err
		}
		if m.clone {
			in.Request = r.Clone()
		}
	}
	p.invalidate(cv.creds)
	p.log.Info("AWS rejected the credentials; replaying the call with fresh ones", "code", code, "host", host)
	p.replays.Add(1)
	p.observeRejected(ctx, host, code, true)
	s.cv.Store(nil)
	out, md, err2 := next.HandleFinalize(ctx, in)
	code2, again := rejectionCode(err2)
	switch cv2 := s.cv.Load(); {
	case again && cv2 != nil:
		p.observeRejected(ctx, s.host, code2, false)
		p.dampRejection(s.host, cv2, code2)
	case err2 == nil || code2 != "":
		p.accepted(s.host)
	}
	return out, md, err2
}

// accepted forgets what host rejected: it answered something else.
func (p *Provider) accepted(host string) {
	if host != "" {
		p.damp.Forget(host)
	}
}

// dampRejection notes that host rejected cv's credentials and reports
// whether the rejection goes to the caller as it is (see damp.Hosts).
func (p *Provider) dampRejection(host string, cv *converted, code string) bool {
	damped, d := p.damp.Rejected(host, cv.creds.SessionToken, cv.seen, p.now())
	if damped {
		p.log.Warn("fresh AWS credentials were rejected too; not refreshing on this host's rejections for a while",
			"code", code, "host", host, "for", d)
	}
	return damped
}

// rejectionCode returns the error code of an answer that says the
// credentials were rejected.
func rejectionCode(err error) (string, bool) {
	var ae interface{ ErrorCode() string }
	if !errors.As(err, &ae) {
		return "", false
	}
	c := ae.ErrorCode()
	return c, isRetryCode(c)
}
