package classify

import "fmt"

// NetworkFailure says why no answer came from the token endpoint, as
// tokenmgr.TokenError.NetworkFailure tells it: the cause a user must fix differs
// (a typo in the host, a wrong port or stopped server, an untrusted
// certificate, or the network itself).
type NetworkFailure int

// The network failures tokenmgr.TokenError.NetworkFailure tells apart.
const (
	// NotNetwork: an answer came, or no request was made.
	NotNetwork NetworkFailure = iota
	// NoSuchHost: the host name does not exist (NXDOMAIN). Not retried.
	NoSuchHost
	// ConnectionRefused: nothing listens at the host and port. Retried,
	// at most tokenmgr.Config.RefusedAttempts times when that is set.
	ConnectionRefused
	// CertificateRejected: this machine does not trust the server's TLS
	// certificate (unknown authority, expired, another host's). Not retried.
	CertificateRejected
	// OtherNetwork: any other failure to get an answer (timeout, reset,
	// DNS server not answering). Retried.
	OtherNetwork
	// ProxyFailure: the proxy (HTTPS_PROXY, HTTP_PROXY) was not reached
	// (refused, unknown host, an https proxy's untrusted certificate), so
	// the token endpoint was never asked. Retried. A proxy that answers
	// CONNECT with an error (407, 502) is OtherNetwork: net/http gives
	// only its status text.
	ProxyFailure
	// NotTLS: an https URL's server answered the TLS handshake in plain
	// http (or something else that is not TLS): the URL's scheme or port
	// is wrong. Not retried.
	NotTLS
)

// String names the failure ("connection refused").
func (f NetworkFailure) String() string {
	switch f {
	case NotNetwork:
		return "not a network failure"
	case NoSuchHost:
		return "no such host"
	case ConnectionRefused:
		return "connection refused"
	case CertificateRejected:
		return "certificate rejected"
	case OtherNetwork:
		return "network failure"
	case ProxyFailure:
		return "proxy failure"
	case NotTLS:
		return "server does not speak TLS"
	}
	return fmt.Sprintf("NetworkFailure(%d)", int(f))
}

// Permanent reports whether asking again cannot mend f: a host name that
// does not exist, a certificate this machine does not trust, a server that
// does not speak TLS at an https URL. The Client
// returns these at once and retries every other network failure; a
// Source that reaches its endpoint by other means (awscreds' STS calls)
// follows the same rule through it.
func (f NetworkFailure) Permanent() bool {
	return f == NoSuchHost || f == CertificateRejected || f == NotTLS
}

// CodeHint says in a few words what an OAuth error code of RFC 6749 §5.2
// usually means ("client ID or secret wrong or revoked" for
// invalid_client), as tokenmgr.TokenError's message says it; empty for a
// code it does not know.
func CodeHint(code string) string { return codeHints[code] }

var codeHints = map[string]string{
	"invalid_client":          "client ID or secret wrong or revoked",
	"invalid_grant":           "refresh token or grant expired, revoked or already used",
	"unauthorized_client":     "this client may not use this grant type",
	"invalid_scope":           "a requested scope is unknown or not allowed for this client",
	"invalid_request":         "the token request is malformed",
	"unsupported_grant_type":  "the server does not support this grant type",
	"temporarily_unavailable": "try again later",
	"server_error":            "the authorization server failed",
}
