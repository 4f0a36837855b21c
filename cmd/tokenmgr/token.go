package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"

	"github.com/tokenmgr/tokenmgr"
)

var tokenCommand = &command{
	name:    "token",
	summary: "print the current valid access token",
	help: `Prints the current valid access token alone on one line, fetching or
refreshing it as needed through the configured store, so that

  curl -H "Authorization: Bearer $(tokenmgr token)" https://api.example.com/

works. A stored token is used while it is fresh; a stale or expired one is
refreshed (with TOKENMGR_REFRESH_TOKEN set, the refresh_token grant,
redeeming the stored, possibly rotated, refresh token in preference to the
variable's; else client credentials), and the new token is saved for the
next run and for other processes sharing the store.

Exit status: 0 with the token on stdout; 1 with one line on stderr saying
why (bad configuration, store, or the token endpoint's answer); 2 for a
usage error.`,
	flags: func(fs *flag.FlagSet, o *options) {
		fs.BoolVar(&o.verbose, "v", false, "log refreshes and retries to stderr (never a token or secret)")
	},
	run: runToken,
}

func runToken(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	env, err := tokenmgr.ReadEnv(o.lookup)
	if err != nil {
		return fail(stderr, "token", err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	cfg, err := env.Config(ctx)
	if err != nil {
		return fail(stderr, "token", err)
	}
	cfg.RefreshTimeout = o.timeout
	if o.verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := tokenmgr.New(cfg)
	if err != nil {
		return fail(stderr, "token", err)
	}
	defer c.Close()
	tok, err := c.Token(ctx)
	if err != nil {
		// Defence in depth: an endpoint could echo a secret in its
		// error_description.
		return fail(stderr, "token", errors.New(env.Redactor().Redact(err.Error())))
	}
	if _, err := fmt.Fprintln(stdout, tok.AccessToken); err != nil {
		return fail(stderr, "token", err)
	}
	return exitOK
}
