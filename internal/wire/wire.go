// Package wire holds the rules of what tokenmgr puts on the wire that the
// root package and package envconfig both apply: where a token URL may
// point, and which bytes an access token may hold.
package wire

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/tokenmgr/tokenmgr/classify"
	"github.com/tokenmgr/tokenmgr/display"
)

// ErrCleartextTokenURL refuses a token URL that would carry the client
// secret or refresh token over a network in the clear, whether it comes
// from TOKENMGR_TOKEN_URL or from Go (tokenmgr.New).
var ErrCleartextTokenURL = errors.New("plain http sends the client secret in the clear; use https (http is allowed to loopback only)")

// Cleartext reports whether u is plain http to a host other than loopback.
func Cleartext(u *url.URL) bool {
	return strings.EqualFold(u.Scheme, "http") && !classify.IsLoopback(u.Hostname())
}

// CheckTokenURL checks a token endpoint's or issuer's URL: absolute,
// https, or http to loopback.
func CheckTokenURL(v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Hostname() == "" {
		return errors.New("not an absolute URL")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if Cleartext(u) {
			return ErrCleartextTokenURL
		}
		return nil
	}
	return fmt.Errorf("scheme %q is not https", display.Cut(u.Scheme, 20))
}

// BadTokenByte returns the index of the first byte of s that does not
// belong in an access token, or -1. Strict is RFC 6750's
//
//	b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//
// otherwise any visible ASCII (VCHAR) is allowed.
func BadTokenByte(s string, strict bool) int {
	if !strict {
		for i := 0; i < len(s); i++ {
			if s[i] <= ' ' || s[i] >= 0x7f {
				return i
			}
		}
		return -1
	}
	i := 0
	for ; i < len(s); i++ {
		b := s[i]
		if !(isAlnum(b) || b == '-' || b == '.' || b == '_' || b == '~' || b == '+' || b == '/') {
			break
		}
	}
	if i == 0 {
		return 0
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return i
		}
	}
	return -1
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// BadTypeByte returns the index of the first byte of a token_type that is
// not an RFC 9110 tchar, or -1. An empty type is allowed: x/oauth2 reads it
// as Bearer.
func BadTypeByte(s string) int {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(isAlnum(b) || (b < 0x7f && b > ' ' && isTcharPunct(b))) {
			return i
		}
	}
	return -1
}

func isTcharPunct(b byte) bool {
	switch b {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
