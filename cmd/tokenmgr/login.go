package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/tokenmgr/tokenmgr/diagnose/jwtinfo"
	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/login"
	"github.com/tokenmgr/tokenmgr/store"
)

// loginTimeout is login's default --timeout: a person reads, types and
// clicks.
const loginTimeout = 10 * time.Minute

var loginCommand = &command{
	name:    "login",
	summary: "sign a person in (browser, or --device) and keep the result",
	help: `Signs a person in at the OpenID issuer TOKENMGR_ISSUER as the client
TOKENMGR_CLIENT_ID (TOKENMGR_CLIENT_SECRET only for a confidential
client) and keeps the result in the store, where "tokenmgr token" and
NewFromEnv in a program (importing github.com/tokenmgr/tokenmgr/login)
serve and refresh it. TOKENMGR_SCOPES defaults to openid email profile
offline_access.

By default it opens the browser at the issuer's sign-in page and listens
on 127.0.0.1 for the redirect back (authorization code with PKCE). With
--no-browser it prints the URL to open instead, and still listens (the
browser must run on this machine). With --device it uses the device
login: it prints a URL and a code to enter on any device.

A failed or cancelled sign-in leaves what was stored as it was. It
prints who signed in, never a token.

Exit status: 0 when signed in; 1 when the sign-in failed or was denied;
2 for a usage error.`,
	flags: func(fs *flag.FlagSet, o *options) {
		fs.BoolVar(&o.device, "device", false, "use the device login (a code entered on another device)")
		fs.BoolVar(&o.noBrowser, "no-browser", false, "print the URL to open instead of opening a browser")
		fs.StringVar(&o.listen, "listen", "127.0.0.1:0", "the loopback address the browser is redirected to")
	},
	run: runLogin,
}

// errNoBrowser is --no-browser's OpenURL: the URL is printed instead.
var errNoBrowser = errors.New("--no-browser")

func runLogin(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	cfg, env, st, code := loginConfig(ctx, o, stderr, "login")
	if cfg == nil {
		return code
	}
	defer closeStore(st)
	if !o.set["timeout"] {
		o.timeout = loginTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	cfg.Prompt, cfg.ListenAddr = stderr, o.listen
	if o.noBrowser {
		cfg.OpenURL = func(context.Context, string) error { return errNoBrowser }
	}
	signIn := login.Browser
	if o.device {
		signIn = login.Device
	}
	tok, err := signIn(ctx, *cfg)
	if err != nil {
		return failEnv(stderr, "login", err, env)
	}
	who := "signed in"
	if raw, ok := tok.Extra("id_token").(string); ok {
		if info, err := jwtinfo.Parse(raw); err == nil {
			who += " as " + person(info.Claims)
		}
	}
	fmt.Fprintf(stdout, "%s at %s; kept as credential %q in %s\n", who, env.Issuer, env.Key, storeName(st))
	return exitOK
}

// person names who signed in: email, else name, else subject.
func person(c jwtinfo.Claims) string {
	switch {
	case c.Email != "":
		return display.Printable(c.Email, 200)
	case c.Name != "":
		return display.Printable(c.Name, 200)
	}
	return "subject " + display.Printable(c.Subject, 200)
}

// loginConfig reads the sign-in's configuration and opens its store; on
// failure it reports and returns a nil Config with the exit code.
func loginConfig(ctx context.Context, o *options, stderr io.Writer, cmd string) (*login.Config, *envconfig.Env, store.Store, int) {
	env, err := envconfig.Read(o.lookup, envconfig.NeedCredential)
	if err != nil {
		return nil, nil, nil, fail(stderr, cmd, err)
	}
	if env.Issuer == "" {
		fmt.Fprintf(stderr, "tokenmgr %s: TOKENMGR_ISSUER is not set: set it to the OpenID issuer to sign in at, with TOKENMGR_CLIENT_ID\n", cmd)
		return nil, nil, nil, exitUsage
	}
	octx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := env.OpenStore(octx)
	if err != nil {
		return nil, nil, nil, failEnv(stderr, cmd, err, env)
	}
	return &login.Config{
		Issuer: env.Issuer, ClientID: env.ClientID, ClientSecret: env.ClientSecret, Scopes: env.Scopes,
		Store: st, Key: env.Key,
	}, env, st, exitOK
}

func closeStore(st store.Store) {
	if c, ok := st.(io.Closer); ok {
		c.Close()
	}
}

// revoke revokes the stored sign-in at the issuer, for logout --revoke.
func revoke(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	cfg, env, st, code := loginConfig(ctx, o, stderr, "logout")
	if cfg == nil {
		return code
	}
	defer closeStore(st)
	err := login.Revoke(ctx, *cfg)
	switch {
	case errors.Is(err, login.ErrNoRevocation):
		fmt.Fprintf(stderr, "tokenmgr logout: %s names no revocation endpoint; the sign-in is only deleted here\n", env.Issuer)
	case err != nil:
		return failEnv(stderr, "logout", err, env)
	default:
		fmt.Fprintf(stdout, "revoked credential %q at %s\n", env.Key, env.Issuer)
	}
	return exitOK
}
