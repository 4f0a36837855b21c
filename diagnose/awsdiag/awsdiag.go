// Package awsdiag is "tokenmgr doctor" for AWS credentials (package
// awscreds): it checks the configuration the environment describes step
// by step, and says what an STS or AWS error comes down to ([Explain]).
// It lives in the diagnose module, off the SDK path: a program using
// awscreds links neither it nor the JWT parser it needs.
package awsdiag

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/awscreds"
	"github.com/tokenmgr/tokenmgr/diagnose"
	"github.com/tokenmgr/tokenmgr/diagnose/jwtinfo"
	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/store"
)

// Options configures [Run]. The zero value reads the process
// environment.
type Options struct {
	// Lookup reads a variable; nil means os.LookupEnv.
	Lookup func(string) (string, bool)
	// Offline skips the checks that need the network.
	Offline bool
	// Timeout bounds each network step. Default 15s.
	Timeout time.Duration
	// HTTPClient reaches STS. Default: one with Timeout. A copy of it
	// is used that follows no redirect, whatever its CheckRedirect says:
	// a redirect is reported, not followed.
	HTTPClient *http.Client
	// RefusedAttempts bounds the requests to STS, and to the web identity
	// issuer, whose connection is refused (see Config.RefusedAttempts):
	// default 4, so that a stopped server or a wrong port is reported in
	// about a second rather than at Timeout.
	RefusedAttempts int
}

// Run checks the AWS configuration the environment describes and
// returns one [diagnose.Check] per step, in order:
//
//	aws configuration  the AWS_* variables are valid; role, region, endpoint
//	web identity       the token file is readable and, for a JWT, its iss,
//	                   aud and sub, and exp not past
//	clock (STS)        local time against the Date header of STS: over 30s
//	                   off WARN, over 5m FAIL
//	stored credentials when some are stored for this configuration (what
//	                   credential_process hands out), tested with a signed
//	                   sts:GetCallerIdentity before new ones are fetched:
//	                   FAIL when AWS rejects them (revoked)
//	sts                a real AssumeRoleWithWebIdentity, its error explained
//	                   by cause ([Explain]): clock skew, expired web
//	                   identity, wrong audience, unknown issuer, trust policy
//	aws credentials    a signed sts:GetCallerIdentity with them: account and ARN
//
// It stores nothing and no message or hint holds a secret.
func Run(ctx context.Context, opts Options) []diagnose.Check {
	if opts.Lookup == nil {
		opts.Lookup = os.LookupEnv
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 15 * time.Second
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: opts.Timeout}
	}
	if opts.RefusedAttempts <= 0 {
		opts.RefusedAttempts = 4
	}
	var out []diagnose.Check
	var secrets []string
	add := func(name string, st diagnose.Status, msg, hint string) {
		for _, s := range secrets {
			if len(s) >= 4 {
				msg, hint = strings.ReplaceAll(msg, s, "[REDACTED]"), strings.ReplaceAll(hint, s, "[REDACTED]")
			}
		}
		out = append(out, diagnose.Check{Name: name, Status: st, Message: oneLine(msg), Hint: oneLine(hint)})
	}
	// skipRest marks every step not yet reported as skipped.
	skipRest := func(why string) {
		for _, n := range []string{"aws configuration", "web identity", "clock (STS)", "sts", "aws credentials"} {
			if !slices.ContainsFunc(out, func(c diagnose.Check) bool { return c.Name == n }) {
				add(n, diagnose.Skip, why, "")
			}
		}
	}

	env, err := awscreds.ReadEnv(opts.Lookup)
	if err != nil {
		add("aws configuration", diagnose.Fail, strings.TrimPrefix(err.Error(), "tokenmgr: "), "see the variables in \"tokenmgr aws credential-process --help\"")
		skipRest("the AWS configuration is unusable")
		return out
	}
	endpoint := env.STSEndpoint
	if endpoint == "" {
		endpoint = "https://sts." + env.Region + ".amazonaws.com"
	}
	from := "the TOKENMGR_* OAuth configuration"
	if env.WebIdentityTokenFile != "" {
		from = env.WebIdentityTokenFile
	}
	add("aws configuration", diagnose.OK, fmt.Sprintf("role %s, STS %s, web identity from %s", env.RoleARN, endpoint, from), "")

	// Web identity.
	var wit string
	if env.WebIdentityTokenFile != "" {
		var err error
		if wit, err = awscreds.ReadTokenFile(env.WebIdentityTokenFile); err != nil {
			add("web identity", diagnose.Fail, "AWS_WEB_IDENTITY_TOKEN_FILE: "+strings.TrimPrefix(err.Error(), "awscreds: "), Explain(err, 0).Hint)
			skipRest("no web identity token")
			return out
		}
	} else if opts.Offline {
		add("web identity", diagnose.Skip, "offline: no token asked of the TOKENMGR_* OAuth configuration", "")
	} else {
		tok, err := oauthToken(ctx, opts)
		if err != nil {
			add("web identity", diagnose.Fail, "getting the web identity token from the TOKENMGR_* OAuth configuration: "+strings.TrimPrefix(err.Error(), "tokenmgr: "), "\"tokenmgr doctor\" without AWS_ROLE_ARN diagnoses the OAuth configuration alone")
			skipRest("no web identity token")
			return out
		}
		wit = tok
	}
	secrets = append(secrets, wit)
	var info *jwtinfo.Info
	if wit != "" {
		var err error
		info, err = jwtinfo.Parse(wit)
		switch {
		case err != nil:
			add("web identity", diagnose.Fail, "the token is not a well-formed JWT: "+err.Error(), "STS takes an OIDC ID token or a JWT access token")
		case info.Format != jwtinfo.JWS:
			add("web identity", diagnose.Warn, "the token is not a readable JWT ("+string(info.Format)+")", "STS takes an OIDC ID token or a JWT access token")
		default:
			c := info.Claims
			msg := fmt.Sprintf("JWT from %s for audience %s, subject %s", orNone(c.Issuer), orNone(strings.Join(c.Audience, ",")), orNone(c.Subject))
			switch {
			case len(c.Audience) == 0:
				add("web identity", diagnose.Fail, msg+": no aud claim",
					"STS refuses a web identity token without an audience (InvalidIdentityToken: Incorrect token audience): ask the issuer for one that is a client ID of the role's IAM OIDC provider (sts.amazonaws.com for EKS IRSA and GitHub Actions)")
			case c.Expiry != nil && !time.Now().Before(*c.Expiry):
				add("web identity", diagnose.Fail, msg+fmt.Sprintf(": expired %s ago", time.Since(*c.Expiry).Round(time.Second)),
					"what writes the token must refresh it (kubelet, the CI runner, the OAuth issuer); tokenmgr re-reads the file at every refresh")
			case c.Expiry != nil:
				add("web identity", diagnose.OK, msg+fmt.Sprintf(", expires in %s", time.Until(*c.Expiry).Round(time.Second)), "")
			default:
				add("web identity", diagnose.OK, msg, "")
			}
		}
	}

	if opts.Offline {
		skipRest("offline: STS not called")
		return out
	}

	// Clock.
	// Every call to STS follows no redirect: the signed GetCallerIdentity
	// carries the session token in X-Amz-Security-Token, which net/http
	// would send on to another host, and the clock is the endpoint's own.
	skew, err := dateSkew(ctx, noRedirects(opts.HTTPClient), endpoint)
	switch {
	case err != nil:
		add("clock (STS)", diagnose.Warn, "cannot read STS's time: "+err.Error(), "")
	default:
		abs := max(skew, -skew)
		msg := fmt.Sprintf("this machine's clock is %s STS's", roundSkew(skew))
		hint := "set this machine's clock right (enable NTP, e.g. timedatectl set-ntp true): SigV4 rejects requests more than 15 minutes off, and STS checks the web identity token's exp and nbf"
		switch {
		case abs > skewLimit:
			add("clock (STS)", diagnose.Fail, msg, hint)
		case abs > 30*time.Second:
			add("clock (STS)", diagnose.Warn, msg, hint)
		default:
			add("clock (STS)", diagnose.OK, msg, "")
		}
	}

	// STS, with a Provider of its own: nothing stored. It is configured
	// as credential_process's (the token file, or a token source), so
	// that its fingerprint finds the credentials stored for it.
	pcfg := awscreds.Config{
		RoleARN: env.RoleARN, RoleSessionName: env.RoleSessionName, Region: env.Region, STSEndpoint: env.STSEndpoint,
		Duration: env.Duration, WebIdentityTokenFile: env.WebIdentityTokenFile, HTTPClient: opts.HTTPClient,
		RefusedAttempts: opts.RefusedAttempts,
	}
	if pcfg.WebIdentityTokenFile == "" {
		pcfg.WebIdentity = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: wit})
	}
	p, err := awscreds.New(pcfg)
	if err != nil {
		add("sts", diagnose.Fail, err.Error(), "")
		skipRest("no credentials")
		return out
	}
	defer p.Close()
	cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()

	// The stored credentials, those credential_process hands out now,
	// are tested before new ones are fetched: a session revoked before it
	// expires is served from the store until then, and a fresh Provider
	// would not see it.
	signed := awscreds.NoRedirectClient(opts.HTTPClient, "the session token")
	stored := storedCredentials(cctx, env, pcfg, signed, skew)
	if stored.status != "" {
		secrets = append(secrets, stored.secret...)
		add("stored credentials", stored.status, stored.msg, stored.hint)
	}

	creds, err := p.Retrieve(cctx)
	if err != nil {
		x := Explain(err, skew)
		add("sts", diagnose.Fail, "AssumeRoleWithWebIdentity: "+x.Message+" ("+string(x.Cause)+")", x.Hint)
		skipRest("no credentials")
		return out
	}
	secrets = append(secrets, creds.SecretAccessKey, creds.SessionToken)
	add("sts", diagnose.OK, fmt.Sprintf("AssumeRoleWithWebIdentity gave %s, expiring in %s", creds.AccessKeyID, time.Until(creds.Expires).Round(time.Second)), "")

	cfg := callerConfig(env, signed)
	p.Configure(&cfg)
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(cctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		x := Explain(err, skew)
		st := diagnose.Fail
		if x.Cause == CauseUnsupported {
			// Not a fault of the set-up: the credentials came, and this
			// STS (MinIO) cannot say whose they are.
			st, x.Message = diagnose.Warn, x.Message+": the credentials were not checked"
		}
		add("aws credentials", st, "GetCallerIdentity: "+x.Message+" ("+string(x.Cause)+")", x.Hint)
		return out
	}
	add("aws credentials", diagnose.OK, fmt.Sprintf("account %s, %s", aws.ToString(id.Account), aws.ToString(id.Arn)), "")
	return out
}

// callerConfig is the aws.Config of the signed GetCallerIdentity calls,
// reaching STS through hc (which follows no redirect), with no retries.
func callerConfig(env *awscreds.Env, hc aws.HTTPClient) aws.Config {
	cfg := aws.Config{Region: env.Region, HTTPClient: hc, Retryer: func() aws.Retryer { return aws.NopRetryer{} }}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if env.STSEndpoint != "" {
		cfg.BaseEndpoint = aws.String(env.STSEndpoint)
	}
	return cfg
}

// storedCheck is the outcome of the stored credentials check.
type storedCheck struct {
	status    diagnose.Status
	msg, hint string
	secret    []string // to redact from every message
}

// storedCredentials tests the credentials stored for the configuration
// pcfg (with the store env names) with a signed GetCallerIdentity,
// without fetching any. With none stored, or a store that does not open,
// there is nothing to report (a zero storedCheck): the line appears only
// when something is stored under the key.
func storedCredentials(ctx context.Context, env *awscreds.Env, pcfg awscreds.Config, hc aws.HTTPClient, skew time.Duration) storedCheck {
	st, err := env.OpenStore(ctx)
	if err != nil {
		return storedCheck{} // credential_process would fail on it too, saying why
	}
	defer closeStore(st)
	pcfg.Store, pcfg.Key = st, env.Key
	p, err := awscreds.New(pcfg)
	if err != nil {
		return storedCheck{}
	}
	defer p.Close()
	key := p.Key()
	creds, ok, err := p.Stored(ctx)
	switch {
	case err != nil:
		return storedCheck{status: diagnose.Warn, msg: fmt.Sprintf("reading %q from the store: %v", key, err)}
	case !ok:
		return storedCheck{} // none for this configuration: the first run fetches them
	}
	sec := []string{creds.SecretAccessKey, creds.SessionToken}
	if creds.CanExpire && !time.Now().Before(creds.Expires) {
		return storedCheck{status: diagnose.OK, secret: sec, msg: fmt.Sprintf("%s under %q expired %s ago: the next run fetches new ones", creds.AccessKeyID, key, time.Since(creds.Expires).Round(time.Second))}
	}
	cfg := callerConfig(env, hc)
	cfg.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil })
	what := fmt.Sprintf("%s under %q, expiring in %s", creds.AccessKeyID, key, time.Until(creds.Expires).Round(time.Second))
	if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
		x := Explain(err, skew)
		if x.Cause == CauseRevoked || x.Cause == CauseExpired {
			return storedCheck{status: diagnose.Fail, secret: sec, msg: what + ": AWS rejects them: " + x.Message + " (" + string(x.Cause) + ")", hint: revokedProcessHint(key)}
		}
		return storedCheck{status: diagnose.Warn, secret: sec, msg: what + ": GetCallerIdentity: " + x.Message + " (" + string(x.Cause) + ")", hint: x.Hint}
	}
	return storedCheck{status: diagnose.OK, secret: sec, msg: what + ": accepted"}
}

// closeStore closes st if it has a Close method (a Redis store does).
func closeStore(st store.Store) {
	if c, ok := st.(io.Closer); ok {
		c.Close()
	}
}

// noRedirects is c (nil: a new client) copied so that it follows no
// redirect: the clock is read from the endpoint's own answer.
func noRedirects(c *http.Client) *http.Client {
	var n http.Client
	if c != nil {
		n = *c
	}
	n.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &n
}

// oauthToken gets the web identity token the TOKENMGR_* variables
// describe, as a Provider without a token file would, without touching
// the store.
func oauthToken(ctx context.Context, opts Options) (string, error) {
	lookup := func(n string) (string, bool) {
		if n == "TOKENMGR_STORE" {
			return "memory", true
		}
		return opts.Lookup(n)
	}
	te, err := envconfig.Read(lookup, envconfig.NeedCredential)
	if err != nil {
		return "", err
	}
	cfg, err := tokenmgr.ConfigFromEnv(ctx, te)
	if err != nil {
		return "", err
	}
	cfg.RefusedAttempts = opts.RefusedAttempts
	c, err := tokenmgr.New(cfg)
	if err != nil {
		return "", err
	}
	defer c.Close()
	cctx, cancel := context.WithTimeout(ctx, opts.Timeout)
	defer cancel()
	tok, err := c.Token(cctx)
	if err != nil {
		return "", err
	}
	return tok.AccessToken, nil
}

// dateSkew asks u, unsigned, and returns how far the Date of its answer is
// ahead of the local clock at the middle of the exchange.
func dateSkew(ctx context.Context, hc *http.Client, u string) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	mid := start.Add(time.Since(start) / 2)
	d, err := http.ParseTime(resp.Header.Get("Date"))
	if err != nil {
		return 0, fmt.Errorf("no Date header in its answer")
	}
	return d.Sub(mid).Round(time.Second), nil
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
