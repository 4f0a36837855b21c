package tokenmgr

import (
	"fmt"

	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/internal/wire"
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
	if i := wire.BadTokenByte(tok.AccessToken, strict); i >= 0 {
		want := "visible ASCII"
		if strict {
			want = "an RFC 6750 b64token"
		}
		return fmt.Errorf("%w: access_token is not %s (byte %d of %d)", ErrBadTokenResponse, want, i, len(tok.AccessToken))
	}
	if i := wire.BadTypeByte(tok.TokenType); i >= 0 {
		return fmt.Errorf("%w: token_type is not a single word (byte %d of %d)", ErrBadTokenResponse, i, len(tok.TokenType))
	}
	return nil
}
