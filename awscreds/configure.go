package awscreds

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/oauth2"
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
// rewound is not replayed. When even fresh credentials are rejected (a
// role in the wrong account, a trust policy that does not match),
// rejections are returned as they are for a backoff of 1s doubling to 30s
// rather than cost an STS call per request.
func (p *Provider) Configure(cfg *aws.Config) {
	cfg.Credentials = p
	cfg.APIOptions = append(cfg.APIOptions, p.addMiddleware)
}

// RetryMiddlewareID is the ID of the middleware Configure adds.
const RetryMiddlewareID = "tokenmgr.awscreds.RefreshRetry"

func (p *Provider) addMiddleware(stack *middleware.Stack) error {
	if _, ok := stack.Finalize.Get(RetryMiddlewareID); ok {
		return nil
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

// slot records the token a call's last attempt was signed with: Retrieve
// fills it from the context the SDK passes down to identity resolution.
type slot struct{ tok atomic.Pointer[oauth2.Token] }

type slotKey struct{}

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
	if err == nil {
		return out, md, nil
	}
	code, ok := rejectionCode(err)
	tok := s.tok.Load()
	if !ok || tok == nil || ctx.Err() != nil {
		return out, md, err
	}
	if p.damped() {
		return out, md, err
	}
	r, isHTTP := in.Request.(*smithyhttp.Request)
	if isHTTP {
		if rewindErr := r.RewindStream(); rewindErr != nil {
			p.invalidate(tok) // the body is gone: the next call gets fresh credentials
			return out, md, err
		}
		if m.clone {
			in.Request = r.Clone()
		}
	}
	p.invalidate(tok)
	p.log.Info("AWS rejected the credentials; replaying the call with fresh ones", "code", code)
	p.replays.Add(1)
	out, md, err2 := next.HandleFinalize(ctx, in)
	if err2 == nil {
		p.rejections.Store(0)
		return out, md, nil
	}
	if _, again := rejectionCode(err2); again {
		p.damp(code)
	}
	return out, md, err2
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

// damp notes that fresh credentials were rejected too: rejections are
// returned as they are for a backoff (1s doubling to 30s).
func (p *Provider) damp(code string) {
	n := p.rejections.Add(1)
	d := min(time.Second<<min(n-1, 5), 30*time.Second)
	p.dampUntil.Store(p.now().Add(d).UnixNano())
	p.log.Warn("fresh AWS credentials were rejected too; not refreshing on rejections for a while", "code", code, "for", d)
}

func (p *Provider) damped() bool {
	u := p.dampUntil.Load()
	return u != 0 && p.now().UnixNano() < u
}
