package diagnose

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/tokenmgr/tokenmgr/classify"
	"github.com/tokenmgr/tokenmgr/display"
)

// checkAPI calls TOKENMGR_CHECK_URL with the token and explains the
// answer as the transport classifies it.
func (d *diagnosis) checkAPI(ctx context.Context) {
	const name = "check URL"
	switch {
	case d.checkURLProblem != "":
		d.add(name, Fail, d.checkURLProblem+"; the token was not sent",
			"give an https URL of a host the token is meant for (plain http is allowed to loopback only; TOKENMGR_ALLOWED_HOSTS, when set, must name the host as the URL spells it)")
		return
	case d.checkURL == "":
		d.add(name, Skip, "TOKENMGR_CHECK_URL not set: no API called with the token", "set TOKENMGR_CHECK_URL (or --check-url) to an API URL that needs the token")
		return
	case d.tok == "":
		d.add(name, Skip, noToken, "")
		return
	case d.opts.Offline:
		d.add(name, Skip, "offline: API not called", "")
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.checkURL, nil)
	if err != nil {
		d.add(name, Fail, "cannot build the request: "+trimURLError(err), "")
		return
	}
	req.Header.Set("Authorization", d.tokType+" "+d.tok)
	// No redirects: the token goes to the URL given and nowhere else.
	hc := *d.http
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		d.add(name, Warn, fmt.Sprintf("cannot reach %s: %s", display.URL(d.checkURL), trimURLError(err)), "check TOKENMGR_CHECK_URL and the network")
		return
	}
	defer resp.Body.Close()
	where := display.URL(d.checkURL)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		d.add(name, OK, fmt.Sprintf("%s accepted the %s (%s)", where, d.tokFrom, resp.Status), "")
		return
	}
	var cl classify.Classifier
	v := cl.ClassifyResponse(resp, true)
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	code := ""
	if v.Code != "" {
		code = " " + v.Code
	}
	head := fmt.Sprintf("%s answered %d%s", where, resp.StatusCode, code)
	switch v.Kind {
	case classify.KindInvalidToken:
		hint := "the API does not accept this token: check it is meant for this API (issuer, audience, environment); tokenmgr drops a rejected token and fetches a new one"
		switch d.tokFrom {
		case fromStore:
			hint = `the API does not accept the stored token (revoked, or for another API or environment): "tokenmgr logout" drops it; if a fresh one is rejected too, check issuer and audience`
		case fromStatic:
			hint = "the API does not accept this token (expired, revoked, or for another API or environment); " + staticHint
		}
		d.add(name, Fail, head+": invalid token: the "+d.tokFrom+" is invalid, expired or revoked for this API", hint)
	case classify.KindClockSkew:
		d.add(name, Fail, head+": the request's time is too far from the server's", "set this machine's clock right (enable NTP)")
	case classify.KindInsufficientScope:
		d.add(name, Fail, head+": the token lacks a scope this API needs", "add the scope to TOKENMGR_SCOPES (and allow it for the client)")
	case classify.KindClaimsChallenge:
		d.add(name, Fail, head+": the API wants a token with more claims (claims challenge)", "a plain refresh gives the same kind of token; the client needs to ask for the claims")
	case classify.KindAccessDenied:
		d.add(name, Fail, head+": the token is valid but not allowed here (access denied)", "grant this client or subject the permission the API needs")
	case classify.KindChallenge:
		d.add(name, Warn, head+": the API challenges for a token from somewhere else", "check the WWW-Authenticate header the API sends")
	default:
		d.add(name, Warn, head+": an error that says nothing about the token", "check TOKENMGR_CHECK_URL names an endpoint that answers GET")
	}
}
