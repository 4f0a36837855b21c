package tokenmgr

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// FuzzCheckToken: a token the Client accepts from a token response can go
// in an Authorization header as it is (visible ASCII only), and in strict
// mode is an RFC 6750 b64token; the error never quotes the token.
func FuzzCheckToken(f *testing.F) {
	for _, s := range []string{"abc", "aB0-._~+/==", "a=b", "abc\r\nX-Evil: 1", "", " ", "=", "ab c", "\x00", "é"} {
		f.Add(s, "Bearer", true)
		f.Add(s, "Bearer\r\nX: 1", false)
	}
	f.Fuzz(func(t *testing.T, at, typ string, strict bool) {
		err := checkToken(&oauth2.Token{AccessToken: at, TokenType: typ}, strict)
		if err != nil {
			require.ErrorIs(t, err, ErrBadTokenResponse)
			if len(at) >= 4 {
				require.NotContains(t, err.Error(), at, "the error quotes the token")
			}
			return
		}
		for _, s := range []string{at, typ} {
			require.False(t, strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f }),
				"accepted %q / %q with a byte not allowed in a header", at, typ)
		}
		require.NotEmpty(t, at, "accepted an empty token")
		if strict {
			require.Empty(t, strings.TrimRight(strings.TrimLeft(at, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"), "="),
				"accepted %q, not a b64token", at)
		}
	})
}
