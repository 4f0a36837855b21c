package diagnose

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/diagnose/jwtinfo"
	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/store/record"
)

// pickToken chooses the token the next checks inspect.
func (d *diagnosis) pickToken() {
	now := time.Now()
	switch r := d.stored; {
	case r != nil && r.AccessToken != "" && (r.Expiry.IsZero() || r.Expiry.After(now)) && d.ours(r):
		d.tok, d.tokType, d.tokExp, d.tokFrom = r.AccessToken, r.TokenType, r.Expiry, fromStore
	case d.fresh != nil:
		d.tok, d.tokType, d.tokExp, d.tokFrom = d.fresh.AccessToken, d.fresh.TokenType, d.fresh.Expiry, fromFresh
	case d.env != nil && d.env.TokenURL == "" && d.env.AccessToken != "":
		d.tok, d.tokType, d.tokFrom = d.env.AccessToken, "Bearer", fromStatic
	default:
		return
	}
	d.tokType = display.TokenType(d.tokType)
	d.info, d.infoErr = jwtinfo.Parse(d.tok)
}

// ours reports whether r was fetched by the configuration d.env describes,
// by the Client's own rule (a record with another configuration's
// fingerprint is not adopted): another configuration's token is neither
// inspected nor sent to the check URL.
func (d *diagnosis) ours(r *record.Record) bool {
	if d.env == nil || r.Source == "" {
		return true
	}
	f, ok := tokenmgr.SourceFromEnv(d.env).(interface{ Fingerprint() string })
	return !ok || f.Fingerprint() == r.Source
}

const noToken = "no token to inspect: nothing usable stored and none from the token endpoint"

// staticHint is what to do about a static token: it is never refreshed.
const staticHint = "a static TOKENMGR_ACCESS_TOKEN is never refreshed: set a new one, or set TOKENMGR_TOKEN_URL and the client credentials so tokenmgr fetches and refreshes tokens"

func (d *diagnosis) checkFormat() {
	const name = "token format"
	switch {
	case d.tok == "":
		d.add(name, Skip, noToken, "")
	case d.infoErr != nil:
		d.add(name, Fail, d.tokFrom+": "+d.infoErr.Error(), d.fromHint("it starts like a JWT but does not decode, so an API that validates JWTs rejects it"))
	case d.info.Unsecured():
		d.add(name, Fail, d.tokFrom+": JWT with alg none: unsigned, anyone can forge it", d.fromHint("resource servers must reject unsigned tokens; the issuer has to sign them"))
	case d.info.Format == jwtinfo.Opaque:
		msg := d.tokFrom + ": opaque (not a JWT); only its issuer can read it"
		if d.tokFrom == fromStatic {
			d.add(name, Warn, msg+", so its expiry cannot be checked here", staticHint)
			return
		}
		d.add(name, OK, msg, "")
	case d.info.Format == jwtinfo.JWE:
		d.add(name, OK, fmt.Sprintf("%s: encrypted JWT (JWE, alg %s, enc %s); its claims are not readable here", d.tokFrom, d.info.Header.Alg, d.info.Header.Enc), "")
	default:
		h, c := d.info.Header, d.info.Claims
		msg := fmt.Sprintf("%s: JWT, alg %s", d.tokFrom, h.Alg)
		if h.Kid != "" {
			msg += ", kid " + h.Kid
		}
		for _, kv := range [][2]string{{"iss", c.Issuer}, {"sub", c.Subject}, {"aud", strings.Join(c.Audience, ",")}} {
			if kv[1] != "" {
				msg += fmt.Sprintf(", %s %s", kv[0], kv[1])
			}
		}
		d.add(name, OK, msg, "")
	}
}

// fromHint adds what to do about the token given where it came from.
func (d *diagnosis) fromHint(why string) string {
	switch d.tokFrom {
	case fromStore:
		return why + `; "tokenmgr logout" drops it`
	case fromStatic:
		return why + "; check TOKENMGR_ACCESS_TOKEN was copied whole (" + staticHint + ")"
	}
	return why + "; the token endpoint issued it: take it up with the issuer"
}

func (d *diagnosis) checkExpiry() {
	const name = "expiry"
	if d.tok == "" {
		d.add(name, Skip, noToken, "")
		return
	}
	now := time.Now()
	exp, src := d.tokExp, "by the token response"
	var c jwtinfo.Claims
	if d.info != nil && d.info.Format == jwtinfo.JWS {
		c = d.info.Claims
		if c.Expiry != nil {
			exp, src = *c.Expiry, "by its exp claim"
		}
	}
	clockHint := "the issuer's clock or this machine's is off (see clock)"
	switch {
	case c.NotBefore != nil && c.NotBefore.After(now):
		d.add(name, Fail, fmt.Sprintf("%s: not valid yet: nbf %s is %s", d.tokFrom, display.Stamp(*c.NotBefore), display.Relative(*c.NotBefore, now)), clockHint)
		return
	case !exp.IsZero() && !exp.After(now):
		hint := d.fromHint("it can no longer be used")
		switch d.tokFrom {
		case fromFresh:
			hint = "the token endpoint issued an already expired token: " + clockHint
		case fromStatic:
			hint = staticHint
		}
		d.add(name, Fail, fmt.Sprintf("%s: expired %s (%s, %s)", d.tokFrom, display.Relative(exp, now), display.Stamp(exp), src), hint)
		return
	case c.IssuedAt != nil && c.IssuedAt.Sub(now) > skewWarn:
		d.add(name, Warn, fmt.Sprintf("%s: issued in the future: iat %s is %s", d.tokFrom, display.Stamp(*c.IssuedAt), display.Relative(*c.IssuedAt, now)), clockHint)
		return
	case exp.IsZero() && d.tokFrom == fromStatic:
		d.add(name, Warn, d.tokFrom+": no expiry to read; it is used until a server rejects it, and never refreshed", staticHint)
		return
	case exp.IsZero():
		d.add(name, OK, d.tokFrom+": no expiry given; it is used until a server rejects it", "")
		return
	}
	left := exp.Sub(now)
	msg := fmt.Sprintf("%s: valid for %s more (until %s, %s)", d.tokFrom, display.Duration(left), display.Stamp(exp), src)
	switch {
	case left < time.Minute && d.tokFrom == fromStatic:
		d.add(name, Warn, msg, "about to expire; "+staticHint)
	case left < time.Minute:
		d.add(name, Warn, msg, "about to expire; tokenmgr refreshes it before use")
	default:
		d.add(name, OK, msg, "")
	}
}

func (d *diagnosis) checkSignature(ctx context.Context) {
	const name = "signature"
	switch {
	case d.tok == "":
		d.add(name, Skip, noToken, "")
		return
	case d.infoErr != nil:
		d.add(name, Skip, "a malformed token cannot be verified", "")
		return
	case d.info.Format != jwtinfo.JWS:
		d.add(name, Skip, fmt.Sprintf("%s token: no signature to check here", d.info.Format), "")
		return
	case d.info.Unsecured():
		d.add(name, Skip, "alg none: no signature", "")
		return
	case strings.HasPrefix(strings.ToUpper(d.info.Header.Alg), "HS"):
		d.add(name, Skip, d.info.Header.Alg+" is keyed with a shared secret no key set publishes; only the issuer and the API can check it", "")
		return
	case d.opts.Offline:
		d.add(name, Skip, "offline: keys not fetched", "")
		return
	case d.jwksURLProblem != "":
		d.add(name, Fail, "not verified: "+d.jwksURLProblem, "give the https URL of the issuer's JSON Web Key Set")
		return
	}
	jwks := d.jwksURL
	if jwks == "" {
		iss := d.info.Claims.Issuer
		if iss == "" {
			d.add(name, Skip, "not verified: no TOKENMGR_JWKS_URL and no iss claim to discover the keys from", "set TOKENMGR_JWKS_URL to the issuer's key set")
			return
		}
		if p := urlProblem("iss", iss, nil, false); p != "" {
			d.add(name, Skip, "not verified: no TOKENMGR_JWKS_URL, and the iss claim is not an https URL to discover the keys from", "set TOKENMGR_JWKS_URL to the issuer's key set")
			return
		}
		var err error
		jwks, err = d.discoverJWKS(ctx, iss)
		if err != nil {
			d.add(name, Warn, "not verified: "+err.Error(), "set TOKENMGR_JWKS_URL to the issuer's key set")
			return
		}
	}
	var set jose.JSONWebKeySet
	if err := d.getJSON(ctx, jwks, &set); err != nil {
		d.add(name, Warn, fmt.Sprintf("not verified: cannot read the key set at %s: %v", display.URL(jwks), err), "check TOKENMGR_JWKS_URL")
		return
	}
	kid, err := verifySignature(d.tok, &set)
	switch {
	case err == nil:
		msg := fmt.Sprintf("%s: signature verifies with the key set at %s", d.tokFrom, display.URL(jwks))
		if kid != "" {
			msg = fmt.Sprintf("%s: signature verifies with key %s at %s", d.tokFrom, kid, display.URL(jwks))
		}
		d.add(name, OK, msg, "")
	case errors.Is(err, errNoKey), errors.Is(err, errBadSignature):
		d.add(name, Fail, fmt.Sprintf("%s: tampered, or signed by another key: %v (keys at %s)", d.tokFrom, err, display.URL(jwks)),
			"the token was altered, or comes from another issuer or environment than these keys (or the issuer rotated keys)")
	default:
		d.add(name, Skip, "not verified: "+err.Error(), "")
	}
}

// discoverJWKS reads jwks_uri from the issuer's OIDC discovery document.
func (d *diagnosis) discoverJWKS(ctx context.Context, iss string) (string, error) {
	u := strings.TrimSuffix(iss, "/") + "/.well-known/openid-configuration"
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := d.getJSON(ctx, u, &doc); err != nil {
		return "", fmt.Errorf("no OIDC discovery document at %s: %v", display.URL(u), err)
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("the discovery document at %s names no jwks_uri", display.URL(u))
	}
	if p := urlProblem("jwks_uri", doc.JWKSURI, nil, false); p != "" {
		return "", fmt.Errorf("discovery at %s: %s", display.URL(u), p)
	}
	return doc.JWKSURI, nil
}

// getJSON fetches u (no credential sent) and decodes at most 1 MiB of it.
func (d *diagnosis) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := d.http.Do(req)
	if err != nil {
		return errors.New(trimURLError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return errors.New("not valid JSON")
	}
	return nil
}
