package tokenmgr

import (
	"fmt"

	"golang.org/x/oauth2"
)

// checkToken reports whether tok can be put in service: an access_token
// and a token_type that can go in an Authorization header as they are. A
// token with a control character, space or other stray byte would make
// every request fail with a header error until it expired, without ever
// being invalidated; it is an ErrBadTokenResponse instead.
//
// The access token must be an RFC 6750 b64token when the Client attaches
// it itself ("Bearer <token>"); with a Config.Attach, which may put it
// elsewhere, any visible ASCII will do. The token type must be an RFC 9110
// token (a word: "Bearer", "DPoP", "MAC"). Neither value is quoted in the
// error: a token is a secret, and a bad type may hold anything.
func checkToken(tok *oauth2.Token, strict bool) error {
	if tok == nil || tok.AccessToken == "" {
		return fmt.Errorf("%w: no access_token", ErrBadTokenResponse)
	}
	if i := badTokenByte(tok.AccessToken, strict); i >= 0 {
		want := "visible ASCII"
		if strict {
			want = "an RFC 6750 b64token"
		}
		return fmt.Errorf("%w: access_token is not %s (byte %d of %d)", ErrBadTokenResponse, want, i, len(tok.AccessToken))
	}
	if i := badTypeByte(tok.TokenType); i >= 0 {
		return fmt.Errorf("%w: token_type is not a single word (byte %d of %d)", ErrBadTokenResponse, i, len(tok.TokenType))
	}
	return nil
}

// badTokenByte returns the index of the first byte of s that does not
// belong in an access token, or -1. Strict is RFC 6750's
//
//	b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
//
// otherwise any visible ASCII (VCHAR) is allowed.
func badTokenByte(s string, strict bool) int {
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

// badTypeByte returns the index of the first byte of a token_type that is
// not an RFC 9110 tchar, or -1. An empty type is allowed: x/oauth2 reads it
// as Bearer.
func badTypeByte(s string) int {
	for i := 0; i < len(s); i++ {
		b := s[i]
		if !(isAlnum(b) || (b < 0x7f && b > ' ' && isTcharPunct(b))) {
			return i
		}
	}
	return -1
}

func isAlnum(b byte) bool {
	return b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

func isTcharPunct(b byte) bool {
	switch b {
	case '!', '#', '$', '%', '&', '\'', '*', '+', '-', '.', '^', '_', '`', '|', '~':
		return true
	}
	return false
}
