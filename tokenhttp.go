package tokenmgr

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/tokenmgr/tokenmgr/damp"
)

// errTokenRedirect is wrapped when the token endpoint redirected a token
// request to another origin. Retrying cannot mend it.
var errTokenRedirect = errors.New("tokenmgr: token endpoint redirected to another origin; not following it with the client credentials")

// tokenClient returns the *http.Client the Client's sources use to reach
// the token endpoint: user's (http.DefaultClient when nil), copied with a
// CheckRedirect that refuses any redirect to another origin (scheme, host,
// port), so a 307 or 308 from the token URL cannot re-post the client
// secret or refresh token to another host or over plain http. user itself
// is never modified; its own CheckRedirect still runs for redirects that
// stay on the origin.
func tokenClient(user *http.Client) *http.Client {
	if user == nil {
		user = http.DefaultClient
	}
	c := *user
	next := user.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > 0 && !sameOrigin(via[0].URL, req.URL) {
			return fmt.Errorf("%w (%s to %s)", errTokenRedirect, origin(via[0]), origin(req))
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects") // net/http's default
		}
		return nil
	}
	return &c
}

// origin names a request's scheme, host and port, for messages.
func origin(r *http.Request) string {
	return r.URL.Scheme + "://" + r.URL.Hostname() + ":" + damp.Port(r.URL)
}
