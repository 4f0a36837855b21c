package awscreds

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/store"
)

// EnvVars lists the variables ReadEnv reads itself, in documentation
// order. The TOKENMGR_* OAuth and store variables are read by package
// tokenmgr.
var EnvVars = []string{
	"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME", "AWS_REGION",
	"AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL", "TOKENMGR_AWS_DURATION", "TOKENMGR_AWS_KEY",
}

// storeVars are the TOKENMGR_* variables that say where to store.
var storeVars = map[string]bool{
	"TOKENMGR_STORE": true, "TOKENMGR_STORE_PATH": true,
	"TOKENMGR_STORE_PASSPHRASE": true, "TOKENMGR_STORE_PASSPHRASE_FILE": true,
	"TOKENMGR_REDIS_URL": true, // TOKENMGR_STORE=redis
}

// Env is the AWS configuration read from the environment.
type Env struct {
	RoleARN, WebIdentityTokenFile, RoleSessionName string
	Region, STSEndpoint                            string
	Duration                                       time.Duration
	Key                                            string
	// Set lists the variables of EnvVars that were set.
	Set []string
	// Logger, when set, is given to the Provider (ReadEnv leaves it nil).
	Logger *slog.Logger
	// RefusedAttempts is given to the Provider and, without a token file,
	// to the web identity Client (ReadEnv leaves it 0: no bound).
	RefusedAttempts int
	// Observer, when set, is given to the Provider and, without a token
	// file, to the web identity Client (ReadEnv leaves it nil).
	Observer *tokenmgr.Observer

	lookup func(string) (string, bool)
}

// ReadEnv reads the AWS variables (see the package doc) through lookup
// (os.LookupEnv when nil). It returns the first bad value as a
// *envconfig.Error naming the variable.
func ReadEnv(lookup func(string) (string, bool)) (*Env, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	e := &Env{lookup: lookup}
	bad := func(name, problem string) error { return &envconfig.Error{Var: name, Problem: problem} }
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	for _, n := range EnvVars {
		if v, ok := lookup(n); ok {
			e.Set = append(e.Set, n)
			if !utf8.ValidString(v) {
				return nil, bad(n, "not valid UTF-8")
			}
		}
	}
	e.RoleARN = get("AWS_ROLE_ARN")
	switch {
	case e.RoleARN == "":
		return nil, bad("AWS_ROLE_ARN", "not set (the role to assume: arn:aws:iam::<account>:role/<name>)")
	case !strings.HasPrefix(e.RoleARN, "arn:") || !strings.Contains(e.RoleARN, ":role/") || len(e.RoleARN) > 2048:
		return nil, bad("AWS_ROLE_ARN", fmt.Sprintf("%q is not a role ARN (arn:aws:iam::<account>:role/<name>)", display.Cut(e.RoleARN, 80)))
	}
	e.WebIdentityTokenFile = get("AWS_WEB_IDENTITY_TOKEN_FILE")
	e.RoleSessionName = get("AWS_ROLE_SESSION_NAME")
	if e.RoleSessionName != "" && !sessionNameRE().MatchString(e.RoleSessionName) {
		return nil, bad("AWS_ROLE_SESSION_NAME", fmt.Sprintf("%q: want 2 to 64 of A-Z a-z 0-9 _+=,.@-", display.Cut(e.RoleSessionName, 80)))
	}
	for _, n := range []string{"AWS_REGION", "AWS_DEFAULT_REGION"} {
		if v := get(n); v != "" {
			if !regionRE().MatchString(v) {
				return nil, bad(n, fmt.Sprintf("%q is not a region name such as eu-west-1", display.Cut(v, 40)))
			}
			e.Region = v
			break
		}
	}
	for _, n := range []string{"AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"} {
		if v := get(n); v != "" {
			if err := checkEndpoint(v); err != nil {
				return nil, bad(n, err.Error())
			}
			e.STSEndpoint = v
			break
		}
	}
	if e.Region == "" && e.STSEndpoint == "" {
		return nil, bad("AWS_REGION", "not set (the STS region, e.g. eu-west-1; or AWS_ENDPOINT_URL_STS)")
	}
	if v := get("TOKENMGR_AWS_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 15*time.Minute || d > 12*time.Hour || d%time.Second != 0 {
			return nil, bad("TOKENMGR_AWS_DURATION", fmt.Sprintf("%q is not a duration in whole seconds from 15m to 12h", display.Cut(v, 40)))
		}
		e.Duration = d
	}
	if v := get("TOKENMGR_AWS_KEY"); v != "" {
		if len(v) > 256 || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, bad("TOKENMGR_AWS_KEY", "must be at most 256 printable characters")
		}
		e.Key = v
	}
	return e, nil
}

// NewProvider builds a Provider from e: with no token file the web
// identity token comes from a tokenmgr Client configured by the
// TOKENMGR_* variables, which the Provider closes with itself; the store
// is the one the TOKENMGR_STORE* variables name. NewProvider opens that
// store, so it is the Provider's: the first [Provider.Close] closes it
// when it has a Close method (a Redis store's connection pool), and
// NewProvider closes it itself when it fails.
func (e *Env) NewProvider(ctx context.Context) (*Provider, error) {
	if e.lookup == nil {
		e.lookup = os.LookupEnv // an Env built by hand
	}
	cfg := Config{
		RoleARN: e.RoleARN, RoleSessionName: e.RoleSessionName, WebIdentityTokenFile: e.WebIdentityTokenFile,
		Region: e.Region, STSEndpoint: e.STSEndpoint, Duration: e.Duration, Key: e.Key, Logger: e.Logger,
		RefusedAttempts: e.RefusedAttempts, Observer: e.Observer,
	}
	var oidc *tokenmgr.Client
	if e.WebIdentityTokenFile != "" {
		st, err := e.OpenStore(ctx)
		if err != nil {
			return nil, err
		}
		cfg.Store = st
	} else {
		te, err := envconfig.Read(e.lookup, envconfig.NeedCredential)
		if err != nil {
			return nil, fmt.Errorf("%w (with AWS_WEB_IDENTITY_TOKEN_FILE unset, the web identity token comes from the TOKENMGR_* OAuth configuration)", err)
		}
		tcfg, err := tokenmgr.ConfigFromEnv(ctx, te)
		if err != nil {
			return nil, err
		}
		tcfg.Logger = e.Logger
		tcfg.RefusedAttempts = e.RefusedAttempts
		tcfg.Observer = e.Observer
		if awsKey := cmp.Or(e.Key, "aws:"+e.RoleARN); tcfg.Store != nil && tcfg.Key == awsKey {
			// One name for both: the Provider's refresh would hold the
			// name's lock while the web identity Client waits for it, and
			// each would overwrite the other's value.
			closeStore(tcfg.Store)
			v := "TOKENMGR_KEY"
			if e.Key != "" {
				v = "TOKENMGR_AWS_KEY"
			}
			return nil, &envconfig.Error{Var: v, Problem: fmt.Sprintf(
				"%q would name both the AWS credentials (TOKENMGR_AWS_KEY) and the web identity token (TOKENMGR_KEY) in the store; give each its own name", display.Cut(awsKey, 80))}
		}
		if oidc, err = tokenmgr.New(tcfg); err != nil {
			closeStore(tcfg.Store)
			return nil, err
		}
		cfg.WebIdentity, cfg.Store = oidc.TokenSource(), tcfg.Store
	}
	// The store was opened here (and, without a token file, is shared by
	// the web identity Client and the Provider's): it is the Provider's to
	// close, after both Clients, or ours now if there is no Provider.
	p, err := New(cfg)
	if err != nil {
		if oidc != nil {
			oidc.Close()
		}
		closeStore(cfg.Store)
		return nil, err
	}
	if oidc != nil {
		p.owned = oidc
		p.src.dropWebIdentity = oidc.Invalidate
	}
	p.ownedStore, _ = cfg.Store.(io.Closer)
	return p, nil
}

// closeStore closes st if it has a Close method (a Redis store does).
func closeStore(st store.Store) {
	if c, ok := st.(io.Closer); ok {
		c.Close()
	}
}

// OpenStore opens the store the TOKENMGR_STORE* variables name, reading
// no other TOKENMGR_* variable.
func (e *Env) OpenStore(ctx context.Context) (store.Store, error) {
	if e.lookup == nil {
		e.lookup = os.LookupEnv
	}
	te, err := envconfig.Read(func(name string) (string, bool) {
		if !storeVars[name] {
			return "", false
		}
		return e.lookup(name)
	}, envconfig.NeedNothing)
	if err != nil {
		return nil, err
	}
	return te.OpenStore(ctx)
}

// NewFromEnv returns a Provider configured from the environment (see the
// package doc for the variables).
func NewFromEnv() (*Provider, error) {
	e, err := ReadEnv(nil)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return e.NewProvider(ctx)
}
