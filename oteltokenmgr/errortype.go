package oteltokenmgr

import (
	"context"
	"errors"
	"net"
	"net/http"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/classify"
	"github.com/tokenmgr/tokenmgr/store"
)

// errorType names err for the error.type attribute, by the rules the
// Client retries by: tokenmgr.TokenError's code and status, and its
// NetworkFailure. Empty for nil.
func errorType(err error) string {
	if err == nil {
		return ""
	}
	var pe *tokenmgr.PanicError
	if errors.As(err, &pe) {
		return "panic"
	}
	var te *tokenmgr.TokenError
	if errors.As(err, &te) {
		switch {
		case te.Code != "":
			return label(te.Code)
		case te.StatusCode == http.StatusTooManyRequests:
			return "rate_limited"
		case te.StatusCode >= 500:
			return "5xx"
		case te.StatusCode != 0:
			return "4xx"
		}
		switch te.NetworkFailure() {
		case classify.ConnectionRefused:
			return "refused"
		case classify.NoSuchHost:
			return "no_such_host"
		case classify.CertificateRejected:
			return "certificate"
		case classify.ProxyFailure:
			return "proxy"
		case classify.OtherNetwork:
			if timeout(err) {
				return "timeout"
			}
			return "network"
		}
	}
	switch {
	case errors.Is(err, tokenmgr.ErrBadTokenResponse):
		return "bad_response"
	case errors.Is(err, tokenmgr.ErrSameToken):
		return "same_token"
	case errors.Is(err, tokenmgr.ErrClosed):
		return "closed"
	case errors.Is(err, store.ErrUnavailable):
		return "unavailable"
	case timeout(err):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "other"
}

func timeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// label returns s when it looks like an error code (at most 64 letters,
// digits and _ . : -), else "other": a code is a server's text, and an
// attribute must not carry anything else, nor grow without bound.
func label(s string) string {
	if s == "" || len(s) > 64 {
		return "other"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == ':' || c == '-') {
			return "other"
		}
	}
	return s
}
