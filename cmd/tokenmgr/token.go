package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/diagnose"
	"github.com/tokenmgr/tokenmgr/diagnose/jwtinfo"
	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/store"
)

var tokenCommand = &command{
	name:    "token",
	summary: "print the current valid access token",
	help: `Prints the current valid access token alone on one line, fetching or
refreshing it as needed through the configured store, so that

  curl -H "Authorization: Bearer $(tokenmgr token)" https://api.example.com/
  curl -H "$(tokenmgr token --format header)" https://api.example.com/

work. A stored token is used while it is fresh; a stale or expired one is
refreshed (with TOKENMGR_REFRESH_TOKEN set, the refresh_token grant,
redeeming the stored, possibly rotated, refresh token in preference to the
variable's; else client credentials), and the new token is saved for the
next run and for other processes sharing the store.

Formats (--format):
  token            the token alone (default)
  header           "Authorization: Bearer <token>", for curl -H
  json             {"access_token", "token_type", "expiry", "expires_in"} (also --json)
  exec-credential  a kubectl ExecCredential (client.authentication.k8s.io/v1)
                   with status.token and status.expirationTimestamp, for a
                   kubeconfig "exec" user

Token endpoint errors that retrying can mend (5xx, 429, timeouts) are
retried until --timeout, and each failed attempt is reported on stderr in
one line (what failed, at which URL, and when the next attempt is). A
refused connection (nothing listens at TOKENMGR_TOKEN_URL's host and port)
is tried 4 times, under a second, not until --timeout. The error then says
how many attempts were made. Others (a wrong secret, an unknown scope, a
host name that does not exist) fail at once. A TOKENMGR_STORE chosen
explicitly that cannot be read or written is an error; with the default
(auto), a store it picked that then fails to save, or a Redis that does
not answer (TOKENMGR_STORE=redis: each replica fetches its own token
meanwhile), is a warning and the token is still printed. auto finding no
store at all (no keyring answers, no passphrase) is an error naming the
ways out, TOKENMGR_STORE=memory among them: it never keeps a rotated
refresh token in memory only by itself. A static
TOKENMGR_ACCESS_TOKEN that is expired, or not a JWT (so its expiry is
unknown), is printed with a warning on stderr: it is never refreshed.

Exit status: 0 with the token on stdout; 1 with one line on stderr saying
why (bad configuration, store, or the token endpoint's answer) and what to
do, after the lines of the attempts retried; 2 for a usage error.`,
	flags: func(fs *flag.FlagSet, o *options) {
		fs.BoolVar(&o.verbose, "v", false, "log refreshes and retries to stderr (never a token or secret)")
		fs.StringVar(&o.format, "format", "token", "output: token, header, json or exec-credential")
		fs.BoolVar(&o.json, "json", false, "same as --format json")
		fs.BoolVar(&o.forceRefresh, "force-refresh", false, "fetch a new token even when the one held is fresh")
	},
	run: runToken,
}

// tokenFormats are the values --format takes.
var tokenFormats = []string{"token", "header", "json", "exec-credential"}

func runToken(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	if o.json {
		if o.set["format"] && o.format != "json" {
			fmt.Fprintln(stderr, "tokenmgr token: --json and --format "+o.format+" disagree; give one")
			return exitUsage
		}
		o.format = "json"
	}
	if !slices.Contains(tokenFormats, o.format) {
		fmt.Fprintf(stderr, "tokenmgr token: --format %q: want one of %s\n", display.OneLine(o.format), strings.Join(tokenFormats, ", "))
		return exitUsage
	}
	env, err := envconfig.Read(o.lookup, envconfig.NeedCredential)
	if err != nil {
		return fail(stderr, "token", err)
	}
	if o.forceRefresh && env.TokenURL == "" && env.Issuer == "" {
		return fail(stderr, "token", errors.New("--force-refresh: a static TOKENMGR_ACCESS_TOKEN cannot be refreshed; set TOKENMGR_TOKEN_URL and the client credentials instead"))
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	cfg, err := tokenmgr.ConfigFromEnv(ctx, env)
	if err != nil {
		return failEnv(stderr, "token", err, env)
	}
	cfg.RefreshTimeout = o.timeout
	cfg.RefusedAttempts = refusedAttempts
	// Retries are reported from the refresh's goroutine, which may still
	// run when Token has returned on the timeout.
	stderr = &lockedWriter{w: stderr}
	cfg.OnRetry = func(ev tokenmgr.RetryEvent) { reportRetry(stderr, env, ev) }
	if o.verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	// The first store error of a refresh; a background refresh may set
	// it from its own goroutine.
	var storeErr atomic.Pointer[error]
	cfg.OnRefresh = func(ev tokenmgr.RefreshEvent) {
		if ev.StoreErr != nil {
			storeErr.CompareAndSwap(nil, &ev.StoreErr)
		}
	}
	o.tel.instrument(&cfg)
	c, err := tokenmgr.New(cfg)
	if err != nil {
		return failEnv(stderr, "token", err, env)
	}
	defer c.Close()
	tok, err := c.Token(ctx)
	if err == nil && o.forceRefresh && c.Stats().Fetches == 0 {
		// The token came from the store (or memory): drop it, so the
		// Client asks the endpoint and saves the answer.
		c.Invalidate(tok)
		tok, err = c.Token(ctx)
	}
	if err != nil {
		return failEnv(stderr, "token", err, env)
	}
	// A refresh the caller waited for called OnRefresh before Token
	// returned.
	if p := storeErr.Load(); p != nil {
		// A shared store that does not answer (Redis down) is not a token
		// outage: each replica fetches its own token meanwhile.
		if explicitStore(env) && !errors.Is(*p, store.ErrUnavailable) {
			return failEnv(stderr, "token", fmt.Errorf("TOKENMGR_STORE=%s cannot be used, so the token would not be kept: %w", env.Store, *p), env)
		}
		warn(stderr, env, fmt.Sprintf("the token was not saved, so the next run asks the endpoint again: %v", *p))
	}
	if env.TokenURL == "" && env.Issuer == "" {
		warnStatic(stderr, env, tok.AccessToken, time.Now())
	}
	if err := printToken(stdout, o.format, tok); err != nil {
		return fail(stderr, "token", err)
	}
	return exitOK
}

// refusedAttempts is how many times the command tries a token endpoint
// that refuses the connection: a person is waiting, and a wrong port or a
// stopped server is seldom mended in the next seconds (see
// [tokenmgr.Config.RefusedAttempts]).
const refusedAttempts = 4

// reportRetry says on stderr, in one line, that a token request failed and
// will be made again: a slow "token" is never a silent one.
func reportRetry(stderr io.Writer, env *envconfig.Env, ev tokenmgr.RetryEvent) {
	msg, _ := diagnose.Explain(ev.Err, env)
	line := fmt.Sprintf("tokenmgr token: attempt %d failed at TOKENMGR_TOKEN_URL (%s): %s; retrying in %s",
		ev.Attempt, display.URL(env.TokenURL), msg, display.Duration(ev.Wait))
	fmt.Fprintln(stderr, display.OneLine(env.Redactor().Redact(line)))
}

// lockedWriter serializes writes to w from several goroutines.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// explicitStore reports whether the store was chosen by name (variable or
// flag), rather than left to auto.
func explicitStore(env *envconfig.Env) bool {
	return slices.Contains(env.Set, "TOKENMGR_STORE") && env.Store != "auto"
}

// warn prints one warning line on stderr, secrets redacted.
func warn(stderr io.Writer, env *envconfig.Env, msg string) {
	fmt.Fprintf(stderr, "tokenmgr token: warning: %s\n", display.OneLine(env.Redactor().Redact(strings.TrimPrefix(msg, "tokenmgr: "))))
}

// warnStatic warns about a static token that is expired, not yet valid,
// or whose expiry cannot be read: it is printed all the same.
func warnStatic(stderr io.Writer, env *envconfig.Env, tok string, now time.Time) {
	const never = "; a static TOKENMGR_ACCESS_TOKEN is never refreshed: set a new one, or TOKENMGR_TOKEN_URL and the client credentials"
	info, err := jwtinfo.Parse(tok)
	switch {
	case err != nil:
		warn(stderr, env, "TOKENMGR_ACCESS_TOKEN starts like a JWT but does not decode ("+err.Error()+")"+never)
	case info.Format == jwtinfo.Opaque:
		warn(stderr, env, "TOKENMGR_ACCESS_TOKEN is not a JWT, so its expiry is unknown"+never)
	case info.Format == jwtinfo.JWS && info.Claims.Expiry != nil && !info.Claims.Expiry.After(now):
		exp := *info.Claims.Expiry
		warn(stderr, env, fmt.Sprintf("TOKENMGR_ACCESS_TOKEN expired %s (exp %s)%s", display.Relative(exp, now), display.Stamp(exp), never))
	case info.Format == jwtinfo.JWS && info.Claims.NotBefore != nil && info.Claims.NotBefore.After(now):
		nbf := *info.Claims.NotBefore
		warn(stderr, env, fmt.Sprintf("TOKENMGR_ACCESS_TOKEN is not valid yet (nbf %s, %s)", display.Stamp(nbf), display.Relative(nbf, now)))
	}
}

// printToken writes tok in the format asked for.
func printToken(w io.Writer, format string, tok *oauth2.Token) error {
	typ := display.TokenType(tok.TokenType)
	switch format {
	case "header":
		_, err := fmt.Fprintf(w, "Authorization: %s %s\n", typ, tok.AccessToken)
		return err
	case "json":
		out := struct {
			AccessToken string `json:"access_token"`
			TokenType   string `json:"token_type"`
			Expiry      string `json:"expiry,omitempty"`
			ExpiresIn   int64  `json:"expires_in,omitempty"`
		}{AccessToken: tok.AccessToken, TokenType: typ}
		if !tok.Expiry.IsZero() {
			out.Expiry = tok.Expiry.UTC().Format(time.RFC3339)
			out.ExpiresIn = max(int64(time.Until(tok.Expiry)/time.Second), 0)
		}
		return json.NewEncoder(w).Encode(out)
	case "exec-credential":
		// kubectl caches the credential until expirationTimestamp and
		// then runs this command again, which refreshes the token when it
		// is about to expire. (Asking the Client for an earlier expiry
		// would start a background refresh that Close cuts off.)
		exp := tok.Expiry
		type status struct {
			Token               string `json:"token"`
			ExpirationTimestamp string `json:"expirationTimestamp,omitempty"`
		}
		out := struct {
			Kind       string `json:"kind"`
			APIVersion string `json:"apiVersion"`
			Spec       struct {
				Interactive bool `json:"interactive"`
			} `json:"spec"`
			Status status `json:"status"`
		}{Kind: "ExecCredential", APIVersion: "client.authentication.k8s.io/v1", Status: status{Token: tok.AccessToken}}
		if !exp.IsZero() {
			out.Status.ExpirationTimestamp = exp.UTC().Format(time.RFC3339)
		}
		return json.NewEncoder(w).Encode(out)
	}
	_, err := fmt.Fprintln(w, tok.AccessToken)
	return err
}
