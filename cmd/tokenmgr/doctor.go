package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/internal/jwtinfo"
	"github.com/tokenmgr/tokenmgr/internal/record"
	"github.com/tokenmgr/tokenmgr/store"
)

var doctorCommand = &command{
	name:    "doctor",
	summary: "check each thing that can go wrong, one line per check",
	help: `Checks each cause of a token problem and prints one line per check:
OK, WARN or FAIL with a hint (SKIP when a check cannot apply).

  configuration  the variables are valid; which grant is used
  variables      which TOKENMGR_* variables are set (secrets as "(set)" only)
  store          the store opens and what it holds, without any network
  clock          local time against the Date header of the token endpoint
                 (and of TOKENMGR_CHECK_URL): over 30s off WARN, over 5m FAIL
  credentials    a real token request: invalid_client, invalid_grant,
                 unauthorized_client, invalid_scope... explained
  token format   JWT or opaque; a JWT whose header or claims do not decode
                 is FAIL "malformed"; alg "none" is FAIL
  expiry         exp in the past is FAIL "expired", nbf in the future FAIL
  signature      a JWT is verified against the issuer's keys: TOKENMGR_JWKS_URL,
                 or OIDC discovery <iss>/.well-known/openid-configuration
  check URL      with TOKENMGR_CHECK_URL: a GET with the token, the answer
                 classified like the SDK does (InvalidClientTokenId, ...)

Which token is inspected: the stored one when the store holds an access
token that has not expired (that is what "tokenmgr token" hands out), else
the one the token request of the credentials check just got, else a static
TOKENMGR_ACCESS_TOKEN. The credentials check always makes a real request,
but doctor changes nothing in the store, except that a refresh token the
server rotated in answer is saved (it would be lost otherwise).

Doctor never prints a token or a secret. Colour is used only on a terminal
and never when NO_COLOR is set.

Exit status: 0 when no check failed (warnings allowed); 1 when one did;
2 for a usage error.`,
	flags: func(fs *flag.FlagSet, o *options) {
		fs.BoolVar(&o.json, "json", false, "print JSON for scripts")
		fs.StringVar(&o.checkURL, "check-url", "", "an API URL to call with the token (overrides TOKENMGR_CHECK_URL)")
		fs.StringVar(&o.jwksURL, "jwks-url", "", "the issuer's JWKS URL (overrides TOKENMGR_JWKS_URL; default: OIDC discovery from iss)")
		fs.BoolVar(&o.offline, "offline", false, "skip every check that needs the network")
	},
	run: runDoctor,
}

// Check statuses.
const (
	statusOK   = "OK"
	statusWarn = "WARN"
	statusFail = "FAIL"
	statusSkip = "SKIP"
)

type check struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

type doctorJSON struct {
	OK       bool    `json:"ok"`
	Failed   int     `json:"failed"`
	Warnings int     `json:"warnings"`
	Checks   []check `json:"checks"`
}

type doctor struct {
	o      *options
	lookup func(string) (string, bool)
	http   *http.Client
	checks []check

	env      *tokenmgr.Env // nil when the configuration is unusable
	storeEnv *tokenmgr.Env // env, or the store settings alone
	st       store.Store
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

	secrets tokenmgr.Redactor // redacted from every message
}

func runDoctor(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	d := &doctor{
		o:      o,
		lookup: o.lookup,
		http:   &http.Client{Timeout: min(o.timeout, 15*time.Second)},
	}
	d.checkConfig()
	d.checkStore(ctx)
	d.checkClock(ctx)
	d.checkCredentials(ctx)
	d.pickToken()
	d.checkFormat()
	d.checkExpiry()
	d.checkSignature(ctx)
	d.checkAPI(ctx)

	out := doctorJSON{Checks: d.checks}
	for i := range out.Checks {
		c := &out.Checks[i]
		c.Message, c.Hint = d.redact(oneLine(c.Message)), d.redact(oneLine(c.Hint))
		switch c.Status {
		case statusFail:
			out.Failed++
		case statusWarn:
			out.Warnings++
		}
	}
	out.OK = out.Failed == 0
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fail(stderr, "doctor", err)
		}
	} else {
		printChecks(stdout, &out, useColor(stdout, o.lookup))
	}
	if out.Failed > 0 {
		return exitFail
	}
	return exitOK
}

func (d *doctor) add(name, status, msg, hint string) {
	d.checks = append(d.checks, check{Name: name, Status: status, Message: msg, Hint: hint})
}

func (d *doctor) addSecret(s ...string) { d.secrets.Add(s...) }

// redact removes every secret doctor knows of from s, in every encoding a
// request carries it in: defence in depth against a server that echoes one
// in an error description.
func (d *doctor) redact(s string) string { return d.secrets.Redact(s) }

// 1. Configuration.

func (d *doctor) checkConfig() {
	var set []string
	anySet := false
	for _, n := range append(append([]string(nil), tokenmgr.EnvVars...), "TOKENMGR_CHECK_URL", "TOKENMGR_JWKS_URL") {
		v, ok := d.lookup(n)
		anySet = anySet || ok
		short := strings.TrimPrefix(n, tokenmgr.EnvPrefix)
		switch {
		case tokenmgr.IsSecretVar(n):
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
	d.checkURL, _ = d.lookup("TOKENMGR_CHECK_URL")
	d.jwksURL, _ = d.lookup("TOKENMGR_JWKS_URL")
	d.checkURL, d.jwksURL = strings.TrimSpace(d.checkURL), strings.TrimSpace(d.jwksURL)
	env, err := tokenmgr.ReadEnv(d.lookup)
	if err != nil {
		d.add("configuration", statusFail, trimTM(err.Error()), configHint(err))
		for _, more := range moreEnvErrors(d.lookup, err) {
			d.add("configuration", statusFail, trimTM(more.Error()), configHint(more))
		}
		if se, serr := readStoreEnv(d.lookup); serr == nil {
			d.storeEnv = se
			d.addSecret(string(se.StorePassphrase))
		}
	} else {
		d.env, d.storeEnv = env, env
		d.secrets.AddClient(env.ClientID, env.ClientSecret)
		d.addSecret(env.RefreshToken, env.AccessToken, string(env.StorePassphrase))
		var msg string
		switch {
		case env.TokenURL == "":
			msg = "static TOKENMGR_ACCESS_TOKEN, no token endpoint (never refreshed)"
		case env.RefreshToken != "":
			msg = fmt.Sprintf("refresh_token grant at %s as client %q", showURL(env.TokenURL), env.ClientID)
		default:
			msg = fmt.Sprintf("client credentials grant at %s as client %q", showURL(env.TokenURL), env.ClientID)
		}
		if len(env.Scopes) > 0 {
			msg += ", scopes " + strings.Join(env.Scopes, " ")
		}
		msg += fmt.Sprintf(", credential %q, store %s", env.Key, env.Store)
		d.add("configuration", statusOK, msg, "")
	}
	allowHTTP := d.env != nil && d.env.AllowInsecureHTTP
	if p := checkURLVar("TOKENMGR_CHECK_URL", d.checkURL, allowHTTP); p != "" {
		d.checkURLProblem, d.checkURL = p, ""
	}
	if p := checkURLVar("TOKENMGR_JWKS_URL", d.jwksURL, false); p != "" {
		d.jwksURLProblem, d.jwksURL = p, ""
	}
	if !anySet {
		d.add("variables", statusWarn, "no TOKENMGR_* variable is set", "set TOKENMGR_TOKEN_URL, TOKENMGR_CLIENT_ID and TOKENMGR_CLIENT_SECRET")
	} else {
		d.add("variables", statusOK, strings.Join(set, " "), "")
	}
}

// moreEnvErrors finds the bad values after the first (ReadEnv stops at
// it): it reads again with each optional variable found bad hidden, until
// no error or one about a missing variable, which hiding cannot fix.
func moreEnvErrors(lookup func(string) (string, bool), first error) []error {
	hidden := map[string]bool{}
	err := first
	var more []error
	for range len(tokenmgr.EnvVars) {
		var ee *tokenmgr.EnvError
		if !errors.As(err, &ee) || strings.HasPrefix(ee.Problem, "not set") || hidden[ee.Var] || credentialVars[ee.Var] {
			break
		}
		hidden[ee.Var] = true
		_, err = tokenmgr.ReadEnv(func(name string) (string, bool) {
			if hidden[name] {
				return "", false
			}
			return lookup(name)
		})
		if err == nil {
			break
		}
		var next *tokenmgr.EnvError
		if errors.As(err, &next) && strings.HasPrefix(next.Problem, "not set") {
			break // caused by the hiding, or reported already
		}
		more = append(more, err)
	}
	return more
}

func configHint(err error) string {
	var ee *tokenmgr.EnvError
	if !errors.As(err, &ee) || strings.HasPrefix(ee.Problem, "not set (") {
		return "" // the problem says what to set
	}
	switch ee.Var {
	case "TOKENMGR_TOKEN_URL":
		return "set TOKENMGR_TOKEN_URL to the token endpoint (https), or TOKENMGR_ACCESS_TOKEN for a static token"
	case "TOKENMGR_CLIENT_ID", "TOKENMGR_CLIENT_SECRET", "TOKENMGR_CLIENT_SECRET_FILE":
		return "set the client ID and secret the authorization server gave this client"
	case "TOKENMGR_STORE", "TOKENMGR_STORE_PATH", "TOKENMGR_STORE_PASSPHRASE", "TOKENMGR_STORE_PASSPHRASE_FILE":
		return "TOKENMGR_STORE=file needs TOKENMGR_STORE_PASSPHRASE; keyring needs an OS keyring; memory keeps nothing between runs"
	}
	return "fix " + ee.Var
}

// checkURLVar returns what is wrong with an optional URL variable.
func checkURLVar(name, v string, allowHTTP bool) string {
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return name + ": not an absolute URL"
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return ""
	case "http":
		if allowHTTP || isLoopback(u.Hostname()) {
			return ""
		}
		return name + ": plain http would send the token in the clear (http is allowed to loopback only, or with TOKENMGR_ALLOW_INSECURE_HTTP)"
	}
	return name + ": scheme is not https"
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// showValue shows a non-secret variable, any URL password removed.
func showValue(v string) string {
	v = strings.TrimSpace(v)
	if strings.Contains(v, "://") {
		v = showURL(v)
	}
	v = oneLine(v)
	if len(v) > 80 {
		v = v[:80] + "…"
	}
	if v == "" {
		return `""`
	}
	return v
}

func showURL(v string) string {
	u, err := url.Parse(v)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

func trimTM(s string) string { return strings.TrimPrefix(s, "tokenmgr: ") }

// 2. Store.

func (d *doctor) checkStore(ctx context.Context) {
	const name = "store"
	if d.storeEnv == nil {
		d.add(name, statusSkip, "the configuration does not say which store", "")
		return
	}
	sctx, cancel := context.WithTimeout(ctx, d.o.timeout)
	defer cancel()
	st, err := d.storeEnv.OpenStore(sctx)
	if err != nil {
		d.add(name, statusFail, trimTM(err.Error()), storeHint(err))
		return
	}
	if st == nil {
		d.add(name, statusSkip, "none: a static token is not stored", "")
		return
	}
	d.st = st
	rec, err := loadRecord(sctx, st, d.storeEnv.Key)
	if err != nil {
		d.add(name, statusFail, storeName(st)+": "+err.Error(), storeHint(err))
		return
	}
	if rec == nil {
		d.add(name, statusOK, fmt.Sprintf("%s: nothing stored for %q yet; the next token request fills it", storeName(st), d.storeEnv.Key), "")
		return
	}
	d.addSecret(rec.AccessToken, rec.RefreshToken, rec.IDToken)
	d.stored = rec
	now := time.Now()
	var parts []string
	switch {
	case rec.AccessToken == "":
		parts = append(parts, "no access token")
	case rec.Expiry.IsZero():
		parts = append(parts, "an access token with no expiry")
	case rec.Expiry.After(now):
		parts = append(parts, "an access token expiring "+relative(rec.Expiry, now))
	default:
		parts = append(parts, "an access token that expired "+relative(rec.Expiry, now)+" (the next token request replaces it)")
	}
	if rec.RefreshToken != "" {
		parts = append(parts, "a refresh token")
	}
	d.add(name, statusOK, fmt.Sprintf("%s holds %q: %s", storeName(st), d.storeEnv.Key, strings.Join(parts, " and ")), "")
}

func storeHint(err error) string {
	switch {
	case errors.Is(err, store.ErrWrongKey):
		return "TOKENMGR_STORE_PASSPHRASE does not open the file; use the passphrase it was written with, or move the file away to start afresh"
	case errors.Is(err, store.ErrTampered):
		return "the file was modified or damaged; move it away to start afresh (the token is fetched again)"
	case errors.Is(err, store.ErrKeyringUnavailable):
		return "" // its message says how to get a keyring or use the file
	case errors.Is(err, record.ErrFormat):
		return `"tokenmgr logout" deletes the unreadable record`
	case errors.Is(err, store.ErrFormat):
		return "not a tokenmgr store file, or written by a newer tokenmgr"
	}
	return configHint(err)
}

// 3. Clock.

const (
	skewWarn = 30 * time.Second
	skewFail = 5 * time.Minute
)

func (d *doctor) checkClock(ctx context.Context) {
	type target struct{ name, what, url string }
	var ts []target
	if d.env != nil && d.env.TokenURL != "" {
		ts = append(ts, target{"clock", "the token endpoint", d.env.TokenURL})
	}
	if d.checkURL != "" {
		ts = append(ts, target{"clock (check URL)", "TOKENMGR_CHECK_URL", d.checkURL})
	}
	switch {
	case d.o.offline:
		d.add("clock", statusSkip, "--offline: no server asked for its time", "")
		return
	case len(ts) == 0:
		d.add("clock", statusSkip, "no server to compare the clock with", "")
		return
	}
	for _, t := range ts {
		skew, err := d.serverSkew(ctx, t.url)
		switch {
		case err != nil:
			d.add(t.name, statusWarn, fmt.Sprintf("cannot read the time of %s: %v", t.what, trimURLError(err)), "")
			continue
		}
		abs := skew
		if abs < 0 {
			abs = -abs
		}
		dir := "ahead of"
		if skew < 0 {
			dir = "behind"
		}
		msg := fmt.Sprintf("%s's Date header is %s %s this machine's clock", t.what, roundDuration(abs), dir)
		hint := "set this machine's clock right (enable NTP, e.g. timedatectl set-ntp true); JWT validators allow a few minutes of leeway and AWS SigV4 rejects requests more than 15 minutes off"
		switch {
		case abs > skewFail:
			d.add(t.name, statusFail, msg, hint)
		case abs > skewWarn:
			d.add(t.name, statusWarn, msg, hint)
		default:
			d.add(t.name, statusOK, fmt.Sprintf("within %s of %s (off by %s)", skewWarn, t.what, roundDuration(abs)), "")
		}
	}
}

var errNoDate = errors.New("no Date header in its answer")

// serverSkew asks u (without any credential) and returns how far the Date
// of its answer is ahead of the local clock at the middle of the exchange.
func (d *doctor) serverSkew(ctx context.Context, u string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	resp, err := d.http.Do(req)
	t1 := time.Now()
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	ds := resp.Header.Get("Date")
	if ds == "" {
		return 0, errNoDate
	}
	srv, err := http.ParseTime(ds)
	if err != nil {
		return 0, fmt.Errorf("unparsable Date header")
	}
	// Date has whole seconds, truncated: its middle is half a second on.
	local := t0.Add(t1.Sub(t0) / 2)
	return srv.Add(500 * time.Millisecond).Sub(local), nil
}

// trimURLError drops the method and URL net/http puts in front.
func trimURLError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

// 6. Credentials: a real token request.

func (d *doctor) checkCredentials(ctx context.Context) {
	const name = "credentials"
	switch {
	case d.env == nil:
		d.add(name, statusSkip, "no token request: the configuration is unusable", "")
		return
	case d.env.TokenURL == "":
		d.add(name, statusSkip, "static TOKENMGR_ACCESS_TOKEN: no token endpoint to ask", "")
		return
	case d.o.offline:
		d.add(name, statusSkip, "--offline: no token request made", "")
		return
	}
	grant := "client credentials grant"
	if d.env.RefreshToken != "" {
		grant = "refresh_token grant"
	}
	cfg := tokenmgr.Config{
		Source:            d.env.TokenSource(),
		Key:               d.env.Key,
		RefreshTimeout:    min(d.o.timeout, 10*time.Second), // a diagnosis, not a long wait
		TokenTimeout:      min(d.o.timeout, 15*time.Second),
		AllowedHosts:      d.env.AllowedHosts,
		AllowInsecureHTTP: d.env.AllowInsecureHTTP,
	}
	if d.st != nil {
		cfg.Store = &probeStore{st: d.st}
	}
	c, err := tokenmgr.New(cfg)
	if err != nil {
		d.add(name, statusFail, trimTM(err.Error()), "")
		return
	}
	defer c.Close()
	start := time.Now()
	tok, err := c.Token(ctx)
	took := time.Since(start)
	if err != nil {
		msg, hint := explainTokenError(err, d.env)
		d.add(name, statusFail, grant+": "+msg, hint)
		return
	}
	d.fresh = tok
	d.addSecret(tok.AccessToken, tok.RefreshToken)
	if s, ok := tok.Extra("id_token").(string); ok {
		d.addSecret(s)
	}
	msg := fmt.Sprintf("%s: the token endpoint issued a %s token", grant, tokenType(tok.TokenType))
	if !tok.Expiry.IsZero() {
		msg += " expiring " + relative(tok.Expiry, time.Now())
	}
	if s, ok := tok.Extra("scope").(string); ok && s != "" {
		msg += ", scope " + s
	}
	if tok.RefreshToken != "" {
		msg += ", with a refresh token"
	}
	msg += fmt.Sprintf(" (took %s)", roundDuration(took))
	d.add(name, statusOK, msg, "")
}

// explainTokenError says what a failed token request means.
func explainTokenError(err error, env *tokenmgr.Env) (msg, hint string) {
	var te *tokenmgr.TokenError
	status := ""
	if errors.As(err, &te) && te.StatusCode != 0 {
		status = fmt.Sprintf(" (HTTP %d)", te.StatusCode)
	}
	switch {
	case errors.Is(err, tokenmgr.ErrInvalidClient):
		return "invalid_client: client ID or secret wrong or revoked" + status,
			"check TOKENMGR_CLIENT_ID and TOKENMGR_CLIENT_SECRET (or its _FILE) against the authorization server; the secret may have been rotated"
	case errors.Is(err, tokenmgr.ErrInvalidGrant):
		return "invalid_grant: refresh token expired, revoked or already used" + status,
			`get a new refresh token (sign in again), set TOKENMGR_REFRESH_TOKEN, and run "tokenmgr logout" so a dead stored one does not win over it`
	case errors.Is(err, tokenmgr.ErrUnauthorizedClient):
		return "unauthorized_client: this client may not use this grant type" + status,
			"allow the grant for this client at the authorization server, or use the grant it allows"
	case errors.Is(err, tokenmgr.ErrInvalidScope):
		requested := "none"
		if len(env.Scopes) > 0 {
			requested = strings.Join(env.Scopes, " ")
		}
		return "invalid_scope: a requested scope is unknown or not allowed for this client" + status,
			"check TOKENMGR_SCOPES (requested: " + requested + ") against what the client may ask for"
	case errors.Is(err, tokenmgr.ErrBadTokenResponse):
		return trimTM(err.Error()), "the token endpoint answered success without a usable token; check TOKENMGR_TOKEN_URL points at the token endpoint"
	case te != nil && te.Code != "":
		return trimTM(te.Error()), ""
	case te != nil && te.StatusCode != 0:
		return trimTM(te.Error()), "check TOKENMGR_TOKEN_URL: the server did not answer like an OAuth token endpoint"
	case te != nil:
		return "cannot reach the token endpoint: " + trimURLError(te.Err), "check TOKENMGR_TOKEN_URL, the network and any proxy"
	}
	return trimTM(err.Error()), ""
}

// probeStore lets the credentials check make a real token request with
// the stored refresh token: Load hides the stored access token (so the
// Client asks the endpoint) and Save keeps only records that carry a
// refresh token (a rotated one must not be lost); nothing else changes.
type probeStore struct{ st store.Store }

func (p *probeStore) Load(ctx context.Context, key string) ([]byte, error) {
	rec, err := loadRecord(ctx, p.st, key)
	if err != nil {
		return nil, err
	}
	if rec == nil || rec.RefreshToken == "" {
		return nil, fmt.Errorf("probe: %w", store.ErrNotFound)
	}
	return (&record.Record{RefreshToken: rec.RefreshToken}).Encode()
}

func (p *probeStore) Save(ctx context.Context, key string, data []byte) error {
	rec, err := record.Decode(data)
	if err != nil || rec.RefreshToken == "" {
		return nil
	}
	return p.st.Save(ctx, key, data)
}

func (p *probeStore) Delete(context.Context, string) error { return nil }

func (p *probeStore) Lock(ctx context.Context, key string) (func(), error) {
	return lockStore(ctx, p.st, key)
}

// Which token is inspected.

func (d *doctor) pickToken() {
	now := time.Now()
	switch r := d.stored; {
	case r != nil && r.AccessToken != "" && (r.Expiry.IsZero() || r.Expiry.After(now)):
		d.tok, d.tokType, d.tokExp, d.tokFrom = r.AccessToken, r.TokenType, r.Expiry, "stored token"
	case d.fresh != nil:
		d.tok, d.tokType, d.tokExp, d.tokFrom = d.fresh.AccessToken, d.fresh.TokenType, d.fresh.Expiry, "fresh token"
	case d.env != nil && d.env.TokenURL == "" && d.env.AccessToken != "":
		d.tok, d.tokType, d.tokFrom = d.env.AccessToken, "Bearer", "static token"
	default:
		return
	}
	d.tokType = tokenType(d.tokType)
	d.info, d.infoErr = jwtinfo.Parse(d.tok)
}

const noToken = "no token to inspect: nothing usable stored and none from the token endpoint"

// 4. Token format.

func (d *doctor) checkFormat() {
	const name = "token format"
	switch {
	case d.tok == "":
		d.add(name, statusSkip, noToken, "")
	case d.infoErr != nil:
		d.add(name, statusFail, d.tokFrom+": "+d.infoErr.Error(), d.fromHint("it starts like a JWT but does not decode, so an API that validates JWTs rejects it"))
	case d.info.Unsecured():
		d.add(name, statusFail, d.tokFrom+": JWT with alg none: unsigned, anyone can forge it", d.fromHint("resource servers must reject unsigned tokens; the issuer has to sign them"))
	case d.info.Format == jwtinfo.Opaque:
		d.add(name, statusOK, d.tokFrom+": opaque (not a JWT); only its issuer can read it", "")
	case d.info.Format == jwtinfo.JWE:
		d.add(name, statusOK, fmt.Sprintf("%s: encrypted JWT (JWE, alg %s, enc %s); its claims are not readable here", d.tokFrom, d.info.Header.Alg, d.info.Header.Enc), "")
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
		d.add(name, statusOK, msg, "")
	}
}

// fromHint adds what to do about the token given where it came from.
func (d *doctor) fromHint(why string) string {
	switch d.tokFrom {
	case "stored token":
		return why + `; "tokenmgr logout" drops it`
	case "static token":
		return why + "; check TOKENMGR_ACCESS_TOKEN was copied whole"
	}
	return why + "; the token endpoint issued it: take it up with the issuer"
}

// 5. Expiry.

func (d *doctor) checkExpiry() {
	const name = "expiry"
	if d.tok == "" {
		d.add(name, statusSkip, noToken, "")
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
		d.add(name, statusFail, fmt.Sprintf("%s: not valid yet: nbf %s is %s", d.tokFrom, stamp(*c.NotBefore), relative(*c.NotBefore, now)), clockHint)
		return
	case !exp.IsZero() && !exp.After(now):
		hint := d.fromHint("it can no longer be used")
		if d.tokFrom == "fresh token" {
			hint = "the token endpoint issued an already expired token: " + clockHint
		}
		d.add(name, statusFail, fmt.Sprintf("%s: expired %s (%s, %s)", d.tokFrom, relative(exp, now), stamp(exp), src), hint)
		return
	case c.IssuedAt != nil && c.IssuedAt.Sub(now) > skewWarn:
		d.add(name, statusWarn, fmt.Sprintf("%s: issued in the future: iat %s is %s", d.tokFrom, stamp(*c.IssuedAt), relative(*c.IssuedAt, now)), clockHint)
		return
	case exp.IsZero():
		d.add(name, statusOK, d.tokFrom+": no expiry given; it is used until a server rejects it", "")
		return
	}
	left := exp.Sub(now)
	msg := fmt.Sprintf("%s: valid for %s more (until %s, %s)", d.tokFrom, roundDuration(left), stamp(exp), src)
	if left < time.Minute {
		d.add(name, statusWarn, msg, "about to expire; tokenmgr refreshes it before use")
		return
	}
	d.add(name, statusOK, msg, "")
}

// 5. Signature.

func (d *doctor) checkSignature(ctx context.Context) {
	const name = "signature"
	switch {
	case d.tok == "":
		d.add(name, statusSkip, noToken, "")
		return
	case d.infoErr != nil:
		d.add(name, statusSkip, "a malformed token cannot be verified", "")
		return
	case d.info.Format != jwtinfo.JWS:
		d.add(name, statusSkip, fmt.Sprintf("%s token: no signature to check here", d.info.Format), "")
		return
	case d.info.Unsecured():
		d.add(name, statusSkip, "alg none: no signature", "")
		return
	case strings.HasPrefix(strings.ToUpper(d.info.Header.Alg), "HS"):
		d.add(name, statusSkip, d.info.Header.Alg+" is keyed with a shared secret no key set publishes; only the issuer and the API can check it", "")
		return
	case d.o.offline:
		d.add(name, statusSkip, "--offline: keys not fetched", "")
		return
	case d.jwksURLProblem != "":
		d.add(name, statusFail, "not verified: "+d.jwksURLProblem, "give the https URL of the issuer's JSON Web Key Set")
		return
	}
	jwks := d.jwksURL
	if jwks == "" {
		iss := d.info.Claims.Issuer
		if iss == "" {
			d.add(name, statusSkip, "not verified: no TOKENMGR_JWKS_URL and no iss claim to discover the keys from", "set TOKENMGR_JWKS_URL to the issuer's key set")
			return
		}
		if p := checkURLVar("iss", iss, false); p != "" {
			d.add(name, statusSkip, "not verified: no TOKENMGR_JWKS_URL, and the iss claim is not an https URL to discover the keys from", "set TOKENMGR_JWKS_URL to the issuer's key set")
			return
		}
		var err error
		jwks, err = d.discoverJWKS(ctx, iss)
		if err != nil {
			d.add(name, statusWarn, "not verified: "+err.Error(), "set TOKENMGR_JWKS_URL to the issuer's key set")
			return
		}
	}
	var set jose.JSONWebKeySet
	if err := d.getJSON(ctx, jwks, &set); err != nil {
		d.add(name, statusWarn, fmt.Sprintf("not verified: cannot read the key set at %s: %v", showURL(jwks), err), "check TOKENMGR_JWKS_URL")
		return
	}
	kid, err := jwtinfo.Verify(d.tok, &set)
	switch {
	case err == nil:
		msg := fmt.Sprintf("%s: signature verifies with the key set at %s", d.tokFrom, showURL(jwks))
		if kid != "" {
			msg = fmt.Sprintf("%s: signature verifies with key %s at %s", d.tokFrom, kid, showURL(jwks))
		}
		d.add(name, statusOK, msg, "")
	case errors.Is(err, jwtinfo.ErrNoKey), errors.Is(err, jwtinfo.ErrBadSignature):
		d.add(name, statusFail, fmt.Sprintf("%s: tampered, or signed by another key: %v (keys at %s)", d.tokFrom, err, showURL(jwks)),
			"the token was altered, or comes from another issuer or environment than these keys (or the issuer rotated keys)")
	default:
		d.add(name, statusSkip, "not verified: "+err.Error(), "")
	}
}

// discoverJWKS reads jwks_uri from the issuer's OIDC discovery document.
func (d *doctor) discoverJWKS(ctx context.Context, iss string) (string, error) {
	u := strings.TrimSuffix(iss, "/") + "/.well-known/openid-configuration"
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := d.getJSON(ctx, u, &doc); err != nil {
		return "", fmt.Errorf("no OIDC discovery document at %s: %v", showURL(u), err)
	}
	if doc.JWKSURI == "" {
		return "", fmt.Errorf("the discovery document at %s names no jwks_uri", showURL(u))
	}
	if p := checkURLVar("jwks_uri", doc.JWKSURI, false); p != "" {
		return "", fmt.Errorf("discovery at %s: %s", showURL(u), p)
	}
	return doc.JWKSURI, nil
}

// getJSON fetches u (no credential sent) and decodes at most 1 MiB of it.
func (d *doctor) getJSON(ctx context.Context, u string, v any) error {
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

// 7. Check URL.

func (d *doctor) checkAPI(ctx context.Context) {
	const name = "check URL"
	switch {
	case d.checkURLProblem != "":
		d.add(name, statusFail, d.checkURLProblem+"; the token was not sent", "give an https URL (plain http is allowed to loopback only)")
		return
	case d.checkURL == "":
		d.add(name, statusSkip, "TOKENMGR_CHECK_URL not set: no API called with the token", "set TOKENMGR_CHECK_URL (or --check-url) to an API URL that needs the token")
		return
	case d.tok == "":
		d.add(name, statusSkip, noToken, "")
		return
	case d.o.offline:
		d.add(name, statusSkip, "--offline: API not called", "")
		return
	}
	u, _ := url.Parse(d.checkURL)
	// Read TOKENMGR_ALLOWED_HOSTS itself: d.env is nil when a credential
	// variable is missing, and a stored token must still not go astray.
	allowed := strings.FieldsFunc(lookupValue(d.lookup, "TOKENMGR_ALLOWED_HOSTS"), func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	if len(allowed) > 0 && !hostAllowed(u.Hostname(), allowed) {
		d.add(name, statusFail, fmt.Sprintf("%s is not in TOKENMGR_ALLOWED_HOSTS; the token was not sent", u.Hostname()), "add the host to TOKENMGR_ALLOWED_HOSTS if the token is meant for it")
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, d.checkURL, nil)
	if err != nil {
		d.add(name, statusFail, "cannot build the request: "+trimURLError(err), "")
		return
	}
	req.Header.Set("Authorization", d.tokType+" "+d.tok)
	// No redirects: the token goes to the URL given and nowhere else.
	hc := *d.http
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := hc.Do(req)
	if err != nil {
		d.add(name, statusWarn, fmt.Sprintf("cannot reach %s: %s", showURL(d.checkURL), trimURLError(err)), "check TOKENMGR_CHECK_URL and the network")
		return
	}
	defer resp.Body.Close()
	where := showURL(d.checkURL)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		d.add(name, statusOK, fmt.Sprintf("%s accepted the %s (%s)", where, d.tokFrom, resp.Status), "")
		return
	}
	cl := tokenmgr.Classifier{}
	v := cl.ClassifyResponse(resp, true)
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	code := ""
	if v.Code != "" {
		code = " " + v.Code
	}
	head := fmt.Sprintf("%s answered %d%s", where, resp.StatusCode, code)
	switch v.Kind {
	case tokenmgr.KindInvalidToken:
		hint := "the API does not accept this token: check it is meant for this API (issuer, audience, environment); tokenmgr drops a rejected token and fetches a new one"
		if d.tokFrom == "stored token" {
			hint = `the API does not accept the stored token (revoked, or for another API or environment): "tokenmgr logout" drops it; if a fresh one is rejected too, check issuer and audience`
		}
		d.add(name, statusFail, head+": invalid token: the "+d.tokFrom+" is invalid, expired or revoked for this API", hint)
	case tokenmgr.KindClockSkew:
		d.add(name, statusFail, head+": the request's time is too far from the server's", "set this machine's clock right (enable NTP)")
	case tokenmgr.KindInsufficientScope:
		d.add(name, statusFail, head+": the token lacks a scope this API needs", "add the scope to TOKENMGR_SCOPES (and allow it for the client)")
	case tokenmgr.KindClaimsChallenge:
		d.add(name, statusFail, head+": the API wants a token with more claims (claims challenge)", "a plain refresh gives the same kind of token; the client needs to ask for the claims")
	case tokenmgr.KindAccessDenied:
		d.add(name, statusFail, head+": the token is valid but not allowed here (access denied)", "grant this client or subject the permission the API needs")
	case tokenmgr.KindChallenge:
		d.add(name, statusWarn, head+": the API challenges for a token from somewhere else", "check the WWW-Authenticate header the API sends")
	default:
		d.add(name, statusWarn, head+": an error that says nothing about the token", "check TOKENMGR_CHECK_URL names an endpoint that answers GET")
	}
}

func hostAllowed(host string, hosts []string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if suffix, ok := strings.CutPrefix(h, "*."); ok {
			if strings.HasSuffix(host, "."+suffix) {
				return true
			}
		} else if host == h {
			return true
		}
	}
	return false
}

// Output.

// useColor: only on a terminal, and not with NO_COLOR set (to anything)
// or TERM=dumb.
func useColor(w io.Writer, lookup func(string) (string, bool)) bool {
	if _, ok := lookup("NO_COLOR"); ok {
		return false
	}
	if t, _ := lookup("TERM"); t == "dumb" {
		return false
	}
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

var colors = map[string]string{statusOK: "\x1b[32m", statusWarn: "\x1b[33m", statusFail: "\x1b[31m", statusSkip: "\x1b[2m"}

func printChecks(w io.Writer, out *doctorJSON, color bool) {
	width := 0
	for _, c := range out.Checks {
		width = max(width, len(c.Name))
	}
	for _, c := range out.Checks {
		st := fmt.Sprintf("%-4s", c.Status)
		if color {
			st = colors[c.Status] + st + "\x1b[0m"
		}
		line := fmt.Sprintf("%s  %-*s  %s", st, width, c.Name, c.Message)
		if c.Hint != "" && (c.Status == statusFail || c.Status == statusWarn) {
			line += "; hint: " + c.Hint
		}
		fmt.Fprintln(w, line)
	}
	var b strings.Builder
	if out.Failed > 0 {
		fmt.Fprintf(&b, "%d failed", out.Failed)
	} else {
		b.WriteString("no check failed")
	}
	if out.Warnings > 0 {
		fmt.Fprintf(&b, ", %d warning", out.Warnings)
		if out.Warnings > 1 {
			b.WriteString("s")
		}
	}
	fmt.Fprintln(w, b.String())
}

// lookupValue returns a variable's value, or "" when it is unset.
func lookupValue(lookup func(string) (string, bool), name string) string {
	v, _ := lookup(name)
	return v
}
