package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"

	"github.com/tokenmgr/tokenmgr/awscreds"
	"github.com/tokenmgr/tokenmgr/diagnose/awsdiag"
)

var awsCredentialProcessCommand = &command{
	name:    "aws credential-process",
	summary: "print AWS credentials for credential_process",
	help: `Prints AWS temporary credentials from STS AssumeRoleWithWebIdentity as
the JSON an AWS SDK or the AWS CLI reads from a credential_process command
(Version 1, AccessKeyId, SecretAccessKey, SessionToken, Expiration):

  # ~/.aws/config
  [profile app]
  credential_process = tokenmgr aws credential-process

The credentials are kept in the store (TOKENMGR_STORE*), so many processes
make one STS call between them, and are replaced once less than 15 minutes
are left (when the AWS CLI and boto3 would run the command again at every
call). --force-refresh replaces them now: for a session revoked before it
expires (the caller gets InvalidClientTokenId or InvalidAccessKeyId).

Variables: AWS_ROLE_ARN (required), AWS_WEB_IDENTITY_TOKEN_FILE (re-read at
every refresh; without it the web identity token comes from the TOKENMGR_*
OAuth configuration), AWS_ROLE_SESSION_NAME, AWS_REGION or
AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_STS or AWS_ENDPOINT_URL,
TOKENMGR_AWS_DURATION, TOKENMGR_AWS_KEY (the --key flag).

STS errors that retrying can mend (5xx, throttling, timeouts) are retried
until --timeout; a refused connection (nothing listens at the STS
endpoint's host and port) is tried 4 times, as "token" does.

Exit status: 0 with the JSON on stdout; 1 with one line on stderr saying
why (bad configuration, store, or STS's answer; "tokenmgr doctor" explains
STS errors); 2 for a usage error.`,
	flags: func(fs *flag.FlagSet, o *options) {
		fs.BoolVar(&o.verbose, "v", false, "log refreshes and retries to stderr (never a secret)")
		fs.BoolVar(&o.forceRefresh, "force-refresh", false, "fetch new credentials from STS even when the ones held are fresh")
	},
	run: runAWSCredentialProcess,
}

func runAWSCredentialProcess(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	const name = "aws credential-process"
	// --key names the AWS credentials. Without a token file the web
	// identity token is an OAuth credential of its own, under TOKENMGR_KEY:
	// the same name for both would have the two Clients wait on each
	// other's lock and overwrite each other in the store.
	lookup := func(n string) (string, bool) {
		switch {
		case n == "TOKENMGR_AWS_KEY" && o.set["key"]:
			return o.key, true
		case n == "TOKENMGR_KEY":
			return o.env(n)
		}
		return o.lookup(n)
	}
	env, err := awscreds.ReadEnv(lookup)
	if err != nil {
		return fail(stderr, name, err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	// The Provider's log is how the error of a failed attempt reaches us:
	// when --timeout cuts the retries short, it says why (-v prints it all).
	rec := &lastErrorHandler{last: new(atomic.Pointer[string])}
	if o.verbose {
		rec.next = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug})
	}
	env.Logger = slog.New(rec)
	env.RefusedAttempts = refusedAttempts // as "token": a person is waiting
	o.tel.instrumentAWS(env)
	p, err := env.NewProvider(ctx)
	if err != nil {
		return fail(stderr, name, err)
	}
	defer p.Close()
	out, err := p.CredentialProcess(ctx, o.forceRefresh)
	if last := rec.last.Load(); err != nil && ctx.Err() != nil && last != nil {
		err = fmt.Errorf("%w; last attempt: %s", err, strings.TrimPrefix(*last, "tokenmgr: "))
	}
	if err != nil {
		if x := awsdiag.Explain(err, 0); x.Hint != "" {
			// awscreds' hint, alone: the OAuth hints fail adds would name
			// TOKENMGR_TOKEN_URL for what STS said.
			return failHint(stderr, name, err, x.Hint)
		}
		return fail(stderr, name, err)
	}
	if _, err := stdout.Write(out); err != nil {
		return fail(stderr, name, err)
	}
	return exitOK
}

// lastErrorHandler is a slog.Handler that keeps the "error" of the last
// record logged (the Provider's logs never hold a secret) and passes
// records on to next, when set.
type lastErrorHandler struct {
	next slog.Handler
	last *atomic.Pointer[string]
}

func (h *lastErrorHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h *lastErrorHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "error" {
			s := a.Value.String()
			h.last.Store(&s)
		}
		return true
	})
	if h.next != nil && h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *lastErrorHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	if c.next != nil {
		c.next = c.next.WithAttrs(as)
	}
	return &c
}

func (h *lastErrorHandler) WithGroup(name string) slog.Handler {
	c := *h
	if c.next != nil {
		c.next = c.next.WithGroup(name)
	}
	return &c
}
