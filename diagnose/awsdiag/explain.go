package awsdiag

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/smithy-go"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/awscreds"
	"github.com/tokenmgr/tokenmgr/classify"
	"github.com/tokenmgr/tokenmgr/diagnose"
)

// Cause is what an AWS credential error comes down to.
type Cause string

// Causes [Explain] tells apart.
const (
	CauseNone Cause = "" // no error
	// CauseClockSkew: this machine's clock is far from AWS's, so signed
	// requests look expired or from the future (RequestExpired,
	// RequestTimeTooSkewed, "Signature expired", or an expiry error while
	// the clock is measured off).
	CauseClockSkew Cause = "clock_skew"
	// CauseWebIdentityExpired: the web identity token passed to STS has
	// expired (ExpiredTokenException from AssumeRoleWithWebIdentity).
	CauseWebIdentityExpired Cause = "web_identity_expired"
	// CauseWrongAudience: the web identity token's aud is not a client ID
	// of the IAM OIDC provider (InvalidIdentityToken "Incorrect token
	// audience").
	CauseWrongAudience Cause = "wrong_audience"
	// CauseUnknownIssuer: no IAM OIDC provider for the token's iss.
	CauseUnknownIssuer Cause = "unknown_issuer"
	// CauseInvalidWebIdentity: STS refused the web identity token for
	// another reason (signature, thumbprint, malformed).
	CauseInvalidWebIdentity Cause = "invalid_web_identity"
	// CauseRevoked: a service refused the session credentials as invalid
	// (InvalidClientTokenId, UnrecognizedClientException, InvalidToken,
	// InvalidAccessKeyId): revoked, for another partition or account, or
	// garbled.
	CauseRevoked Cause = "revoked"
	// CauseExpired: a service saw the session credentials as expired
	// (ExpiredToken, ExpiredTokenException from a service).
	CauseExpired Cause = "expired"
	// CauseAccessDenied: the role's trust policy does not let this web
	// identity assume it (AccessDenied from STS), or the role lacks a
	// permission.
	CauseAccessDenied Cause = "access_denied"
	// CauseIdPUnreachable: STS could not fetch the issuer's keys
	// (IDPCommunicationError), or the issuer rejected the claim.
	CauseIdPUnreachable Cause = "idp_unreachable"
	// CauseThrottled: too many requests; retried with backoff.
	CauseThrottled Cause = "throttled"
	// CauseUnavailable: STS answered that it cannot serve now (a 5xx:
	// InternalError, ServiceUnavailable, MinIO's STSNotInitialized and
	// STSIAMNotInitialized); retried with backoff.
	CauseUnavailable Cause = "unavailable"
	// CauseInvalidRequest: STS refused the request itself (MinIO's
	// MissingParameter, MalformedPolicyDocument, InsecureConnection).
	CauseInvalidRequest Cause = "invalid_request"
	// CauseUnsupported: the endpoint does not implement the call
	// (NotImplemented, InvalidAction, MethodNotAllowed…): an
	// S3-compatible STS such as MinIO has AssumeRoleWithWebIdentity but
	// no GetCallerIdentity.
	CauseUnsupported Cause = "unsupported"
	// CauseOther: anything else; Message says what.
	CauseOther Cause = "other"
)

// Explanation says what an AWS credential error means and what to do.
// It holds no secret.
type Explanation struct {
	Cause   Cause
	Code    string // the AWS error code, when there is one
	Message string // what happened, on one line
	Hint    string // what to do
}

// String is the message and the hint on one line.
func (e Explanation) String() string {
	s := e.Message
	if e.Hint != "" {
		s += "; hint: " + e.Hint
	}
	return s
}

// revokedProcessHint says what to do when credentials that
// credential_process handed out, stored under key, were revoked before
// they expire: the caller (the AWS CLI, an SDK) cannot tell tokenmgr,
// which serves the stored ones until less than [awscreds.ProcessMinRemaining] is
// left.
func revokedProcessHint(key string) string {
	return "through credential_process, replace the stored ones now: tokenmgr aws credential-process --force-refresh (or tokenmgr logout --key " + key + ")"
}

// skewLimit is how far off a clock may be before an expiry error is put
// down to it: SigV4 tolerates 15 minutes, JWT validators a few.
const skewLimit = 5 * time.Minute

// Explain says what err, from a Provider (STS) or an AWS service called
// with its credentials, comes down to. skew is how far AWS's clock is
// ahead of this machine's (negative: behind), when it was measured (0 when
// not): beyond 5 minutes either way, expiry and validity errors are put
// down to the clock.
func Explain(err error, skew time.Duration) Explanation {
	if err == nil {
		return Explanation{}
	}
	code, msg, fromSTS := errorCode(err)
	x := Explanation{Cause: CauseOther, Code: code, Message: msg}
	skewed := skew > skewLimit || skew < -skewLimit
	clockHint := fmt.Sprintf("this machine's clock is %s AWS's: set it right (enable NTP, e.g. timedatectl set-ntp true)", roundSkew(skew))
	lc := strings.ToLower(msg)
	if errors.Is(err, awscreds.ErrWebIdentityFile) {
		x.Hint = "AWS_WEB_IDENTITY_TOKEN_FILE (Config.WebIdentityTokenFile) must name a regular file holding the token, readable by this user: kubelet writes it for EKS IRSA (a projected service account token), the CI runner for GitHub Actions"
		return x
	}
	if errors.Is(err, awscreds.ErrRedirect) {
		rde := &awscreds.RedirectError{}
		errors.As(err, &rde)
		x.Hint = "the STS endpoint redirects elsewhere, and " + cmp.Or(rde.Carries, "the web identity token") + " is sent to it alone: set AWS_ENDPOINT_URL_STS (or AWS_ENDPOINT_URL, Config.STSEndpoint) to the URL STS itself answers at, or unset it for the regional endpoint https://sts.<region>.amazonaws.com"
		return x
	}
	switch code {
	case "RequestExpired", "RequestTimeTooSkewed", "RequestInTheFuture":
		x.Cause, x.Hint = CauseClockSkew, "the request's signing time is over 15 minutes from AWS's clock: set this machine's clock right (enable NTP)"
		if skew != 0 {
			x.Hint = clockHint
		}
	case "SignatureDoesNotMatch", "InvalidSignatureException":
		if strings.Contains(lc, "expired") || strings.Contains(lc, "future") || skewed {
			x.Cause, x.Hint = CauseClockSkew, "the signature's date is too far from AWS's clock: set this machine's clock right (enable NTP)"
		} else {
			x.Hint = "the signature does not match: a proxy that changes the request, or a wrong secret key"
		}
	case "ExpiredTokenException", "ExpiredToken":
		switch {
		case skewed:
			x.Cause, x.Hint = CauseClockSkew, clockHint
		case fromSTS:
			x.Cause = CauseWebIdentityExpired
			x.Hint = "the web identity token is expired: the file must be refreshed by what writes it (kubelet for EKS IRSA, the CI runner), or the OAuth issuer's tokens live too short; tokenmgr re-reads the file at every refresh"
		default:
			x.Cause = CauseExpired
			x.Hint = "the session credentials expired before use: tokenmgr replaces them and replays the call once; if this persists check the clock and the role's maximum session duration"
		}
	case "InvalidIdentityToken":
		switch {
		case strings.Contains(lc, "audience"):
			x.Cause = CauseWrongAudience
			x.Hint = "the web identity token's aud claim is not a client ID (audience) of the role's IAM OIDC identity provider: add it there, or ask the issuer for the right audience (sts.amazonaws.com for EKS IRSA and GitHub Actions)"
		case strings.Contains(lc, "no openidconnect provider") || strings.Contains(lc, "issuer"):
			x.Cause = CauseUnknownIssuer
			x.Hint = "the account has no IAM OIDC identity provider for the token's iss: create one with that exact issuer URL"
		case skewed:
			x.Cause, x.Hint = CauseClockSkew, clockHint
		default:
			x.Cause = CauseInvalidWebIdentity
			x.Hint = "STS does not accept the web identity token (signature, thumbprint or format): check the IAM OIDC provider's issuer and thumbprint, and that the token is a JWT from that issuer"
		}
	case "IDPCommunicationError", "IDPRejectedClaim":
		x.Cause = CauseIdPUnreachable
		x.Hint = "STS could not get the issuer's keys (its /.well-known/openid-configuration and JWKS must be reachable from the internet), or the issuer refused the claim; tokenmgr retries with backoff"
	case "AccessDenied", "AccessDeniedException":
		x.Cause = CauseAccessDenied
		x.Hint = "the role's trust policy does not allow sts:AssumeRoleWithWebIdentity for this token: check its Principal (the OIDC provider) and the conditions on aud and sub"
		if !fromSTS {
			x.Hint = "the credentials are valid but the role lacks the permission: add it to the role's policies"
		}
	case "InvalidClientTokenId", "UnrecognizedClientException", "InvalidToken", "InvalidTokenId", "InvalidAccessKeyId":
		x.Cause = CauseRevoked
		x.Hint = "AWS does not know these session credentials: revoked (the role's sessions were revoked), for another partition or region endpoint, or garbled; tokenmgr drops them, gets new ones and replays once; " + revokedProcessHint("aws:<role ARN>")
		if skewed {
			x.Cause, x.Hint = CauseClockSkew, clockHint
		}
	case "ValidationError":
		if strings.Contains(lc, "durationseconds") || strings.Contains(lc, "maxsessionduration") {
			x.Hint = "the session duration asked for is longer than the role's MaxSessionDuration (1h unless raised): lower TOKENMGR_AWS_DURATION (Config.Duration) or raise the role's maximum"
		} else {
			x.Hint = "STS refused a parameter: check AWS_ROLE_ARN (arn:aws:iam::<account>:role/<name>) and AWS_ROLE_SESSION_NAME"
		}
	case "InvalidParameterValue", "InvalidClientGrantsToken":
		// MinIO's answer when the web identity token fails its OpenID
		// checks (cmd/sts-errors.go), or the role ARN is not configured.
		x.Cause = CauseInvalidWebIdentity
		x.Hint = "the STS (MinIO) refused the web identity token or a parameter: the token's issuer, audience (the client ID MinIO's OpenID configuration names), signature or expiry, or a role ARN it does not know; its server log says which"
	case "MissingParameter":
		x.Cause, x.Hint = CauseInvalidRequest, "the STS (MinIO) wants a parameter it did not get: check AWS_ROLE_ARN and the web identity token"
	case "MalformedPolicyDocument":
		x.Cause, x.Hint = CauseInvalidRequest, "the STS refused the session policy as malformed"
	case "InsecureConnection":
		x.Cause, x.Hint = CauseInvalidRequest, "the STS requires TLS: use an https:// AWS_ENDPOINT_URL_STS (or AWS_ENDPOINT_URL)"
	case "STSNotInitialized", "STSIAMNotInitialized", "InternalError", "InternalFailure", "ServiceUnavailable":
		x.Cause, x.Hint = CauseUnavailable, "the STS cannot serve now (starting up, or an identity provider it relies on failed); tokenmgr retries with backoff, and its server log says why"
	case "NotImplemented", "InvalidAction", "MethodNotAllowed", "UnknownOperationException", "UnsupportedOperation":
		x.Cause, x.Hint = CauseUnsupported, "this endpoint does not implement the call: an S3-compatible STS (MinIO) has AssumeRoleWithWebIdentity but no GetCallerIdentity"
	case "RegionDisabledException":
		x.Hint = "STS is not activated in this region for the account: activate it (IAM, Account settings) or use another region's endpoint"
	case "Throttling", "ThrottlingException", "RequestLimitExceeded":
		x.Cause, x.Hint = CauseThrottled, "too many STS calls: share credentials between processes through the store (tokenmgr aws credential-process), tokenmgr retries with backoff"
	case "":
		// No answer from STS (an SDK operation error with no status): the
		// network hints, naming STS's endpoint, not the OAuth token URL.
		var te *tokenmgr.TokenError
		var oe *smithy.OperationError
		if errors.As(err, &oe) && errors.As(err, &te) && te.StatusCode == 0 && te.NetworkFailure() != classify.NotNetwork {
			x.Message, x.Hint = diagnose.NetworkHint(te, "STS", "the STS endpoint (AWS_ENDPOINT_URL_STS or AWS_ENDPOINT_URL when set, else https://sts.<AWS_REGION>.amazonaws.com)")
		}
	}
	return x
}

// errorCode finds the AWS error code and message in err, and whether STS
// (AssumeRoleWithWebIdentity) gave it.
func errorCode(err error) (code, msg string, fromSTS bool) {
	var se *awscreds.STSError
	if errors.As(err, &se) && se.Code == "" {
		return "", se.Message, true // no answer
	}
	if se != nil {
		return se.Code, se.Code + ": " + se.Message, true
	}
	var ae interface {
		ErrorCode() string
		ErrorMessage() string
	}
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorCode() + ": " + ae.ErrorMessage(), false
	}
	return "", strings.Join(strings.Fields(err.Error()), " "), false
}

// roundSkew says where this machine's clock stands against AWS's, given
// how far AWS's is ahead.
func roundSkew(d time.Duration) string {
	dir := "behind"
	if d < 0 {
		d, dir = -d, "ahead of"
	}
	return d.Round(time.Second).String() + " " + dir
}
