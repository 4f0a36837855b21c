package diagnose

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/classify"
	"github.com/tokenmgr/tokenmgr/diagnose/jwtinfo"
	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/redact"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
)

// Variables read by [Run] beside the [envconfig.Vars]: they name what
// to check, and are not part of a Client's configuration.
const (
	// CheckURLVar names an API URL to call with the token: the answer is
	// classified as the transport classifies it.
	CheckURLVar = "TOKENMGR_CHECK_URL"
	// JWKSURLVar names the issuer's JSON Web Key Set, to verify a JWT's
	// signature (default: OIDC discovery from its iss claim).
	JWKSURLVar = "TOKENMGR_JWKS_URL"
)

// EnvDocs documents the variables [Run] reads beside [envconfig.Docs].
var EnvDocs = []envconfig.Doc{
	{Name: CheckURLVar, Doc: "doctor: an API URL to call with the token (its answer is explained)"},
	{Name: JWKSURLVar, Doc: "doctor: the issuer's key set, to verify a JWT (default: OIDC discovery from iss)"},
}

// Options configures [Run]. The zero value reads the process environment.
type Options struct {
	// Lookup reads a variable; nil means os.LookupEnv.
	Lookup func(string) (string, bool)
	// Offline skips every check that needs the network.
	Offline bool
	// Timeout bounds each step (opening the store, each request).
	// Default 15s.
	Timeout time.Duration
	// HTTPClient makes the requests that carry no credential or the
	// check URL's (clock, key set, check URL); nil: one with Timeout.
	// Its CheckRedirect is ignored for the check URL: a token is never
	// sent on a redirect.
	HTTPClient *http.Client
}

// Run diagnoses the credential the TOKENMGR_* variables describe and
// returns a report of every check, in this order:
//
//	configuration  the variables are valid; which grant is used
//	variables      which variables are set (secrets as "(set)" only)
//	store          the store opens and what it holds, without any network
//	clock          local time against the Date header of the token endpoint
//	               (and of TOKENMGR_CHECK_URL): over 30s off WARN, over 5m FAIL
//	credentials    a real token request; an OAuth error explained
//	token format   JWT or opaque; a JWT that does not decode or has alg none FAILs
//	expiry         exp in the past or nbf in the future FAILs
//	signature      a JWT verified against the issuer's keys (TOKENMGR_JWKS_URL
//	               or OIDC discovery from iss)
//	check URL      with TOKENMGR_CHECK_URL, a GET with the token, the answer
//	               classified as the transport classifies it
//
// The token inspected is the stored one when the store holds an access
// token that has not expired, else the one the credentials check got, else
// a static TOKENMGR_ACCESS_TOKEN. Run changes nothing in the store, except
// that a refresh token the server rotated in answer to the credentials
// check is saved (it would be lost otherwise). No message or hint holds a
// secret. Every network step is bounded by ctx and Options.Timeout; a
// step that cannot complete is reported as such, and the next runs.
func Run(ctx context.Context, opts Options) *Report {
	d := &diagnosis{opts: opts, lookup: opts.Lookup}
	if d.lookup == nil {
		d.lookup = os.LookupEnv
	}
	if d.opts.Timeout <= 0 {
		d.opts.Timeout = 15 * time.Second
	}
	d.http = opts.HTTPClient
	if d.http == nil {
		d.http = &http.Client{Timeout: d.opts.Timeout}
	}
	d.checkConfig()
	d.checkStore(ctx)
	defer d.closeStore()
	d.checkClock(ctx)
	d.checkCredentials(ctx)
	d.pickToken()
	d.checkFormat()
	d.checkExpiry()
	d.checkSignature(ctx)
	d.checkAPI(ctx)
	for i := range d.report.Checks {
		c := &d.report.Checks[i]
		c.Message, c.Hint = d.redact(display.OneLine(c.Message)), d.redact(display.OneLine(c.Hint))
	}
	return &d.report
}

// diagnosis is the state of one Run.
type diagnosis struct {
	opts   Options
	lookup func(string) (string, bool)
	http   *http.Client
	report Report

	env      *envconfig.Env // nil when the configuration is unusable
	storeEnv *envconfig.Env // env, or the store settings alone
	st       store.Store    // the store, when it opened and is usable
	opened   store.Store    // the store opened, closed when Run returns
	stored   *record.Record
	fresh    *oauth2.Token

	checkURL, jwksURL               string
	checkURLProblem, jwksURLProblem string // a bad value, reported by the check that uses it

	// The token inspected and where it came from.
	tok     string
	tokType string
	tokExp  time.Time
	tokFrom string
	info    *jwtinfo.Info
	infoErr error

	secrets redact.Redactor // redacted from every message
}

// Where the inspected token came from.
const (
	fromStore  = "stored token"
	fromFresh  = "fresh token"
	fromStatic = "static token"
)

func (d *diagnosis) add(name string, status Status, msg, hint string) {
	d.report.Add(Check{Name: name, Status: status, Message: msg, Hint: hint})
}

func (d *diagnosis) addSecret(s ...string) { d.secrets.Add(s...) }

// redact removes every secret the diagnosis knows of from s, in every
// encoding a request carries it in: defence in depth against a server
// that echoes one in an error description.
func (d *diagnosis) redact(s string) string { return d.secrets.Redact(s) }

// Configuration.

func (d *diagnosis) checkConfig() {
	var set []string
	anySet := false
	for _, n := range append(append([]string(nil), envconfig.Vars...), CheckURLVar, JWKSURLVar) {
		v, ok := d.lookup(n)
		anySet = anySet || ok
		short := strings.TrimPrefix(n, envconfig.Prefix)
		switch {
		case envconfig.IsSecret(n):
			// Secrets are shown as set or unset, never by value.
			switch {
			case !ok:
				set = append(set, short+"=(unset)")
			case strings.TrimSpace(v) == "":
				set = append(set, short+"=(set, empty)")
			default:
				d.addSecret(strings.TrimSpace(v))
				set = append(set, short+"=(set)")
			}
		case ok:
			set = append(set, short+"="+showValue(v))
		}
	}
	d.checkURL, _ = d.lookup(CheckURLVar)
	d.jwksURL, _ = d.lookup(JWKSURLVar)
	d.checkURL, d.jwksURL = strings.TrimSpace(d.checkURL), strings.TrimSpace(d.jwksURL)
	env, err := envconfig.Read(d.lookup, envconfig.NeedCredential)
	if err != nil {
		d.add("configuration", Fail, trimTM(err.Error()), Hint(err))
		for _, more := range moreEnvErrors(d.lookup, err) {
			d.add("configuration", Fail, trimTM(more.Error()), Hint(more))
		}
		if se, serr := envconfig.Read(d.lookup, envconfig.NeedStore); serr == nil {
			d.storeEnv = se
			d.addSecret(string(se.StorePassphrase))
		}
	} else {
		d.env, d.storeEnv = env, env
		d.secrets.AddClient(env.ClientID, env.ClientSecret)
		d.addSecret(env.RefreshToken, env.AccessToken, string(env.StorePassphrase))
		var msg string
		switch {
		case env.Issuer != "":
			msg = fmt.Sprintf("a person's sign-in (tokenmgr login) at %s as client %q", display.URL(env.Issuer), env.ClientID)
		case env.TokenURL == "":
			msg = "static TOKENMGR_ACCESS_TOKEN, no token endpoint (never refreshed)"
		case env.RefreshToken != "":
			msg = fmt.Sprintf("refresh_token grant at %s as client %q", display.URL(env.TokenURL), env.ClientID)
		default:
			msg = fmt.Sprintf("client credentials grant at %s as client %q", display.URL(env.TokenURL), env.ClientID)
		}
		if len(env.Scopes) > 0 {
			msg += ", scopes " + strings.Join(env.Scopes, " ")
		}
		msg += fmt.Sprintf(", credential %q, store %s", env.Key, env.Store)
		d.add("configuration", OK, msg, "")
	}
	// The check URL gets the token: the transport's own rule decides
	// where it may go. TOKENMGR_ALLOWED_HOSTS is read even when the
	// configuration is unusable: a stored token must not go astray.
	allowed, insecure := d.hostRules()
	if p := urlProblem(CheckURLVar, d.checkURL, allowed, insecure); p != "" {
		d.checkURLProblem, d.checkURL = p, ""
	}
	if p := urlProblem(JWKSURLVar, d.jwksURL, nil, false); p != "" {
		d.jwksURLProblem, d.jwksURL = p, ""
	}
	if !anySet {
		d.add("variables", Warn, "no TOKENMGR_* variable is set", "set TOKENMGR_TOKEN_URL, TOKENMGR_CLIENT_ID and TOKENMGR_CLIENT_SECRET")
	} else {
		d.add("variables", OK, strings.Join(set, " "), "")
	}
}

// hostRules returns the allowed hosts and whether plain http is allowed,
// from the configuration, or from the variables alone when it is unusable.
func (d *diagnosis) hostRules() (allowed []string, insecure bool) {
	if d.env != nil {
		return d.env.AllowedHosts, d.env.AllowInsecureHTTP
	}
	if d.storeEnv != nil {
		return d.storeEnv.AllowedHosts, d.storeEnv.AllowInsecureHTTP
	}
	// Another variable is bad: read this one alone, by the library's rule.
	only, err := envconfig.Read(func(name string) (string, bool) {
		if name == "TOKENMGR_ALLOWED_HOSTS" {
			return d.lookup(name)
		}
		return "", false
	}, envconfig.NeedNothing)
	if err != nil {
		// An unusable list allows nothing: CheckDestination refuses every
		// URL for it, naming the bad entry.
		return strings.Fields(lookupValue(d.lookup, "TOKENMGR_ALLOWED_HOSTS")), false
	}
	return only.AllowedHosts, false
}

func lookupValue(lookup func(string) (string, bool), name string) string {
	v, _ := lookup(name)
	return v
}

// moreEnvErrors finds the bad values after the first (ReadEnv stops at
// it): it reads again with each optional variable found bad hidden, until
// no error or one about a missing variable, which hiding cannot fix.
func moreEnvErrors(lookup func(string) (string, bool), first error) []error {
	hidden := map[string]bool{}
	err := first
	var more []error
	for range len(envconfig.Vars) {
		var ee *envconfig.Error
		if !errors.As(err, &ee) || strings.HasPrefix(ee.Problem, "not set") || hidden[ee.Var] || envconfig.IsCredential(ee.Var) {
			break
		}
		hidden[ee.Var] = true
		_, err = envconfig.Read(func(name string) (string, bool) {
			if hidden[name] {
				return "", false
			}
			return lookup(name)
		}, envconfig.NeedCredential)
		if err == nil {
			break
		}
		var next *envconfig.Error
		if errors.As(err, &next) && strings.HasPrefix(next.Problem, "not set") {
			break // caused by the hiding, or reported already
		}
		more = append(more, err)
	}
	return more
}

// urlProblem says what is wrong with a URL variable that a request will
// go to, by the transport's rule ([classify.CheckDestination]).
func urlProblem(name, v string, allowed []string, insecure bool) string {
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil {
		return name + ": not an absolute URL"
	}
	err = classify.CheckDestination(u, allowed, insecure)
	switch {
	case err == nil:
		return ""
	case errors.Is(err, tokenmgr.ErrHostNotAllowed):
		return fmt.Sprintf("%s: %s is not in TOKENMGR_ALLOWED_HOSTS", name, u.Host)
	case errors.Is(err, tokenmgr.ErrInsecureHTTP):
		return name + ": plain http would send the token in the clear (http is allowed to loopback only, or with TOKENMGR_ALLOW_INSECURE_HTTP)"
	}
	return name + ": " + trimTM(err.Error())
}

// showValue shows a non-secret variable, any URL password removed.
func showValue(v string) string {
	v = strings.TrimSpace(v)
	if strings.Contains(v, "://") {
		v = display.URL(v)
	}
	v = display.OneLine(v)
	if len(v) > 80 {
		v = v[:80] + "…"
	}
	if v == "" {
		return `""`
	}
	return v
}

func trimTM(s string) string { return strings.TrimPrefix(s, "tokenmgr: ") }

// trimURLError drops the method and URL net/http puts in front.
func trimURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}
