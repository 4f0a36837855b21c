package awscreds

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/damp"
	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
)

// CredentialSource is the aws.Credentials Source of the credentials a
// Provider hands out.
const CredentialSource = "tokenmgr/awscreds"

// DefaultDuration is the DurationSeconds asked of STS when Config.Duration
// is zero.
const DefaultDuration = time.Hour

// Config configures a Provider. RoleARN and one of WebIdentity and
// WebIdentityTokenFile are required.
type Config struct {
	// RoleARN is the role to assume; RoleSessionName names the session in
	// CloudTrail (default "tokenmgr").
	RoleARN, RoleSessionName string

	// WebIdentity gives the OIDC token STS exchanges (its AccessToken), for
	// example a tokenmgr Client.TokenSource() for workload identity
	// federation from any OIDC issuer. When STS refuses the token as
	// expired or invalid and the source has a method
	// Invalidate(*oauth2.Token), it is called with it. Or:
	WebIdentity oauth2.TokenSource
	// WebIdentityTokenFile names a file holding the token, re-read at
	// every refresh (EKS IRSA, GitHub Actions, GKE and AKS federation).
	WebIdentityTokenFile string

	// Region is the STS region. STSEndpoint overrides the regional
	// endpoint (https://sts.<region>.amazonaws.com); left empty it is
	// AWS_ENDPOINT_URL_STS, else AWS_ENDPOINT_URL, when set, as the AWS
	// SDKs read them. NewFromEnv also fills Region from AWS_REGION.
	Region, STSEndpoint string

	// Duration is the DurationSeconds asked of STS (default 1h). The
	// expiry STS answers with is what counts.
	Duration time.Duration

	// Store keeps the credentials across restarts and shares them between
	// processes (one STS call for many). Nil keeps them in memory.
	Store store.Store
	// Key names the credentials in Store. Default "aws:" + RoleARN.
	Key string

	// HTTPClient reaches STS. Default: the AWS SDK's transport. It is
	// used through a copy that follows no redirect, whatever its
	// CheckRedirect: a redirect is a [*RedirectError].
	HTTPClient *http.Client

	// Logger receives refreshes, retries and rejections, never a secret.
	// Nil discards.
	Logger *slog.Logger

	// STSClient, when set, is called for AssumeRoleWithWebIdentity
	// instead of the client a Provider makes from Region, STSEndpoint and
	// HTTPClient (then not needed). Turn its retries off (aws.NopRetryer):
	// the Provider retries what is worth it, with backoff. Give it
	// [NoRedirectClient] as its HTTP client: the request carries the web
	// identity token, which a redirect would re-post to another host.
	STSClient STSClient

	// RefusedAttempts bounds the STS requests of one refresh when STS
	// refuses the connection, as [tokenmgr.Config.RefusedAttempts] does
	// for a token endpoint (0: retried until the refresh's deadline, like
	// other network failures).
	RefusedAttempts int

	// Observer receives the Provider's refreshes, STS requests (as token
	// requests), rejections and store errors, as
	// [tokenmgr.Config.Observer] does (package oteltokenmgr/otelaws sets
	// one up). Nil costs nothing.
	Observer *tokenmgr.Observer
}

// Provider hands out AWS temporary credentials from STS
// AssumeRoleWithWebIdentity, refreshed ahead of expiry by the same engine
// as a tokenmgr.Client (a [tokenmgr.Cache] of aws.Credentials). It is an
// aws.CredentialsProvider, safe for concurrent use. Close it to stop
// background refreshes.
type Provider struct {
	c     *tokenmgr.Cache[aws.Credentials]
	owned *tokenmgr.Client // the web identity Client NewFromEnv made, closed with the Provider
	src   *stsSource
	st    store.Store // Config.Store, for Stored
	key   string
	log   *slog.Logger

	// ownedStore is the store Env.NewProvider opened, closed once by the
	// first Close (after both Clients); a Config.Store stays the caller's.
	ownedStore     io.Closer
	closeStoreOnce sync.Once

	conv atomic.Pointer[converted] // the credentials last handed out, and when first

	replays atomic.Int64 // SDK calls replayed with fresh credentials
	damp    damp.Hosts   // per-host rejection damping of Configure's middleware, the root transport's rule

	obs *tokenmgr.Observer // Config.Observer, for Configure's rejections; nil when unset

	now func() time.Time
}

var _ aws.CredentialsProvider = (*Provider)(nil)

// converted is credentials the Provider handed out, with when it first
// did, so that Retrieve on the credentials in service allocates nothing.
type converted struct {
	creds aws.Credentials
	// seen is when the Provider first handed creds out, for the rejection
	// damping's "obtained after the last rejection": no earlier than when
	// the Cache obtained them, and in practice the same moment (the call
	// that waited for them retrieves them at once).
	seen time.Time
}

// sessionNameRE and regionRE are compiled on first use, not at package
// init: every run of the tokenmgr command links this package, and compiling
// them (the {2,64} repeat most) cost about 1 ms and 98 KB of fresh heap
// pages before main, for commands that never check a session name.
var sessionNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[\w+=,.@-]{2,64}$`) })

// New returns a Provider. It fails only when the configuration is
// unusable; STS is first called by the first Retrieve.
func New(cfg Config) (*Provider, error) {
	if cfg.RoleSessionName == "" {
		cfg.RoleSessionName = "tokenmgr"
	}
	if cfg.Duration == 0 {
		cfg.Duration = DefaultDuration
	}
	if cfg.STSEndpoint == "" {
		for _, n := range []string{"AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"} {
			if v := strings.TrimSpace(os.Getenv(n)); v != "" {
				if err := checkEndpoint(v); err != nil {
					return nil, &envconfig.Error{Var: n, Problem: err.Error()}
				}
				cfg.STSEndpoint = v
				break
			}
		}
	}
	switch {
	case cfg.RoleARN == "":
		return nil, errors.New("awscreds: Config.RoleARN is empty")
	case !strings.HasPrefix(cfg.RoleARN, "arn:") || !strings.Contains(cfg.RoleARN, ":role/"):
		return nil, fmt.Errorf("awscreds: Config.RoleARN %q is not a role ARN (arn:aws:iam::<account>:role/<name>)", display.Cut(cfg.RoleARN, 80))
	case !sessionNameRE().MatchString(cfg.RoleSessionName):
		return nil, fmt.Errorf("awscreds: Config.RoleSessionName %q: want 2 to 64 of A-Z a-z 0-9 _+=,.@-", display.Cut(cfg.RoleSessionName, 80))
	case cfg.WebIdentity == nil && cfg.WebIdentityTokenFile == "":
		return nil, errors.New("awscreds: set Config.WebIdentity or Config.WebIdentityTokenFile")
	case cfg.WebIdentity != nil && cfg.WebIdentityTokenFile != "":
		return nil, errors.New("awscreds: set one of Config.WebIdentity and Config.WebIdentityTokenFile, not both")
	case cfg.Duration < 0 || cfg.Duration%time.Second != 0 || cfg.Duration > 12*time.Hour:
		return nil, fmt.Errorf("awscreds: Config.Duration %v: want whole seconds up to 12h", cfg.Duration)
	case cfg.Region == "" && cfg.STSEndpoint == "" && cfg.STSClient == nil:
		return nil, errors.New("awscreds: Config.Region is empty (set AWS_REGION, or Config.STSEndpoint)")
	case cfg.Region != "" && !regionRE().MatchString(cfg.Region):
		return nil, fmt.Errorf("awscreds: Config.Region %q is not a region name", display.Cut(cfg.Region, 40))
	}
	region := cfg.Region
	if region == "" {
		region = "us-east-1" // STS signs nothing here; the SDK wants a region all the same
	}
	if cfg.STSEndpoint != "" {
		if err := checkEndpoint(cfg.STSEndpoint); err != nil {
			return nil, fmt.Errorf("awscreds: Config.STSEndpoint: %w", err)
		}
	}
	key := cfg.Key
	if key == "" {
		key = "aws:" + cfg.RoleARN
	}
	src := newSTSSource(&cfg, cfg.STSEndpoint, region)
	p := &Provider{key: key, log: cfg.Logger, now: time.Now, src: src, st: cfg.Store}
	if cfg.Observer != nil {
		o := *cfg.Observer // the caller's may change; ours does not
		p.obs = &o
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.log = p.log.With("credential", key)
	c, err := tokenmgr.NewCache(src.kind(), tokenmgr.Config{
		Store:           cfg.Store,
		Key:             key,
		Logger:          cfg.Logger,
		RefusedAttempts: cfg.RefusedAttempts,
		Observer:        cfg.Observer,
		// AWS codes a service answers for rejected credentials (see
		// RetryCodes); the Client's transport replays on them.
		InvalidTokenCodes: extraTransportCodes,
	})
	if err != nil {
		return nil, err
	}
	p.c = c
	return p, nil
}

var regionRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,40}$`) })

// checkEndpoint accepts https URLs, and http to loopback (a test STS): the
// web identity token must not cross a network in the clear.
func checkEndpoint(v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", display.Cut(v, 80))
	}
	switch {
	case u.User != nil:
		return errors.New("must not carry user information")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("plain http to %s: use https (http is allowed to loopback only)", u.Hostname())
	}
	return fmt.Errorf("unsupported scheme %q", u.Scheme)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// Retrieve returns valid credentials, calling STS only when none are held
// or they are about to expire (a token in service is an atomic load). It
// implements aws.CredentialsProvider; Expires is the expiry STS gave.
func (p *Provider) Retrieve(ctx context.Context) (creds aws.Credentials, err error) {
	// Named results and a pointer to them: credentials are 112 bytes, and
	// each copy showed in Retrieve's profile, half of which is the clock.
	if creds, err = p.c.Get(ctx); err != nil {
		return aws.Credentials{}, err
	}
	cv := p.converted(&creds) // noted however they are handed out
	if s, ok := ctx.Value(slotKey{}).(*slot); ok {
		s.cv.Store(cv) // the retry middleware invalidates exactly these
	}
	return creds, nil
}

// converted returns creds with when the Provider first handed them out,
// by Retrieve or Transport: the retry middleware's damping judges a
// rejection by it, and credentials handed out before a host rejected
// others are not "fresh credentials rejected too".
func (p *Provider) converted(creds *aws.Credentials) *converted {
	// The session token in service is one string: comparing it with
	// itself stops at its pointer.
	if cv := p.conv.Load(); cv != nil && cv.creds.SessionToken == creds.SessionToken {
		return cv
	}
	cv := &converted{creds: *creds, seen: p.now()}
	p.conv.Store(cv)
	return cv
}

// invalidate takes creds out of service if they still are
// (compare-and-swap: newer ones another goroutine already fetched are
// kept).
func (p *Provider) invalidate(creds aws.Credentials) { p.c.Invalidate(creds) }

// Invalidate drops creds if they are the credentials in service, so the
// next Retrieve gets new ones from STS; credentials already replaced are
// left alone (compare-and-swap). Use it when AWS rejects credentials on a
// path Configure and Transport do not see.
func (p *Provider) Invalidate(creds aws.Credentials) {
	if creds.SessionToken != "" {
		p.c.Invalidate(creds)
	}
}

// Stats returns what the refresh engine did: STS calls are Fetches, and
// Replays counts both Transport and Configure replays.
func (p *Provider) Stats() tokenmgr.Stats {
	s := p.c.Stats()
	s.Replays += p.replays.Load()
	return s
}

// Close stops background refreshes and waits for them. It deletes nothing
// stored. A store that [Env.NewProvider] (or [NewFromEnv]) opened, when it
// has a Close method (a Redis store's connection pool), is closed once,
// by the first Close, after the refreshes have stopped, and its error
// returned; a [Config.Store] passed to [New] is left to the caller. Close
// may be called more than once, and from several goroutines.
func (p *Provider) Close() error {
	err := p.c.Close()
	if p.owned != nil {
		err = errors.Join(err, p.owned.Close())
	}
	if p.ownedStore != nil {
		p.closeStoreOnce.Do(func() { err = errors.Join(err, p.ownedStore.Close()) })
	}
	return err
}

// Stored returns the credentials stored for p's configuration under its
// key (what the next process would adopt, what credential_process hands
// out), without calling STS; ok is false when none are, or they were
// stored by another configuration. A record that is not usable (no key
// pair, bytes that cannot go in a header) is an error saying why. With no
// Config.Store there are none.
func (p *Provider) Stored(ctx context.Context) (creds aws.Credentials, ok bool, err error) {
	if p.st == nil {
		return aws.Credentials{}, false, nil
	}
	r, err := record.Load(ctx, p.st, p.key)
	if err != nil || r == nil || r.Source != "" && r.Source != p.src.Fingerprint() {
		return aws.Credentials{}, false, err
	}
	if creds, ok, err = recordCredentials(r); err != nil {
		// Not adopted (the next fetch replaces it), but not nothing: a
		// diagnosis says what is wrong with it.
		return aws.Credentials{}, false, fmt.Errorf("stored credential %q: %w", p.key, err)
	}
	return creds, ok, nil
}

// Key returns the name of p's credentials in the store.
func (p *Provider) Key() string { return p.key }

// String names the credentials, never a secret.
func (p *Provider) String() string { return "awscreds.Provider(" + p.key + ")" }
