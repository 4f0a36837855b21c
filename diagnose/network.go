package diagnose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/display"
)

// Clock.

// How far the clock may be off a server's before WARN and FAIL.
const (
	skewWarn = 30 * time.Second
	skewFail = 5 * time.Minute
)

func (d *diagnosis) checkClock(ctx context.Context) {
	type target struct{ name, what, url string }
	var ts []target
	if d.env != nil && d.env.TokenURL != "" {
		ts = append(ts, target{"clock", "the token endpoint", d.env.TokenURL})
	}
	if d.checkURL != "" {
		ts = append(ts, target{"clock (check URL)", CheckURLVar, d.checkURL})
	}
	switch {
	case d.opts.Offline:
		d.add("clock", Skip, "offline: no server asked for its time", "")
		return
	case len(ts) == 0:
		d.add("clock", Skip, "no server to compare the clock with", "")
		return
	}
	for _, t := range ts {
		skew, err := d.serverSkew(ctx, t.url)
		if err != nil {
			d.add(t.name, Warn, fmt.Sprintf("cannot read the time of %s: %v", t.what, trimURLError(err)), "")
			continue
		}
		abs, dir := skew, "ahead of"
		if skew < 0 {
			abs, dir = -skew, "behind"
		}
		msg := fmt.Sprintf("%s's Date header is %s %s this machine's clock", t.what, display.Duration(abs), dir)
		hint := "set this machine's clock right (enable NTP, e.g. timedatectl set-ntp true); JWT validators allow a few minutes of leeway and AWS SigV4 rejects requests more than 15 minutes off"
		switch {
		case abs > skewFail:
			d.add(t.name, Fail, msg, hint)
		case abs > skewWarn:
			d.add(t.name, Warn, msg, hint)
		default:
			d.add(t.name, OK, fmt.Sprintf("within %s of %s (off by %s)", skewWarn, t.what, display.Duration(abs)), "")
		}
	}
}

var errNoDate = errors.New("no Date header in its answer")

// serverSkew asks u (without any credential) and returns how far the Date
// of its answer is ahead of the local clock at the middle of the exchange.
func (d *diagnosis) serverSkew(ctx context.Context, u string) (time.Duration, error) {
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
		return 0, errors.New("unparsable Date header")
	}
	// Date has whole seconds, truncated: its middle is half a second on.
	local := t0.Add(t1.Sub(t0) / 2)
	return srv.Add(500 * time.Millisecond).Sub(local), nil
}

// Credentials: a real token request.

func (d *diagnosis) checkCredentials(ctx context.Context) {
	const name = "credentials"
	switch {
	case d.env == nil:
		d.add(name, Skip, "no token request: the configuration is unusable", "")
		return
	case d.env.Issuer != "":
		d.add(name, Skip, "a person's sign-in: tokenmgr token refreshes it, tokenmgr login renews it", "")
		return
	case d.env.TokenURL == "":
		d.add(name, Skip, "static TOKENMGR_ACCESS_TOKEN: no token endpoint to ask", "")
		return
	case d.opts.Offline:
		d.add(name, Skip, "offline: no token request made", "")
		return
	}
	grant := "client credentials grant"
	if d.env.RefreshToken != "" {
		grant = "refresh_token grant"
	}
	cfg := tokenmgr.Config{
		Source:         tokenmgr.SourceFromEnv(d.env),
		Key:            d.env.Key,
		RefreshTimeout: min(d.opts.Timeout, 10*time.Second), // a diagnosis, not a long wait
		// Nothing listening at the port is reported after a second try
		// (a server restarting), not retried for RefreshTimeout.
		RefusedAttempts:   2,
		TokenTimeout:      d.opts.Timeout,
		AllowedHosts:      d.env.AllowedHosts,
		AllowInsecureHTTP: d.env.AllowInsecureHTTP,
	}
	switch {
	case d.st != nil && d.stored != nil && !d.ours(d.stored) && d.env.RefreshToken != "":
		// A Client would refuse (ErrKeyInUse); redeeming the seed here
		// would use it up when the server rotates it, with nowhere to
		// save the new one.
		d.add(name, Skip, "not asked: the store's credential belongs to another configuration (see store), where a rotated refresh token could not be saved", "")
		return
	case d.st != nil && d.stored != nil && !d.ours(d.stored):
		// The client credentials grant loses nothing: ask without the
		// store, which keeps the other configuration's credential.
	case d.st != nil:
		cfg.Store = &probeStore{st: d.st, seed: d.env.RefreshToken}
	}
	c, err := tokenmgr.New(cfg)
	if err != nil {
		d.add(name, Fail, trimTM(err.Error()), "")
		return
	}
	defer c.Close()
	start := time.Now()
	tok, err := c.Token(ctx)
	took := time.Since(start)
	if err != nil {
		msg, hint := explainTokenError(err, d.env)
		d.add(name, Fail, grant+": "+msg, hint)
		return
	}
	d.fresh = tok
	d.addSecret(tok.AccessToken, tok.RefreshToken)
	if s, ok := tok.Extra("id_token").(string); ok {
		d.addSecret(s)
	}
	msg := fmt.Sprintf("%s: the token endpoint issued a %s token", grant, display.TokenType(tok.TokenType))
	if !tok.Expiry.IsZero() {
		msg += " expiring " + display.Relative(tok.Expiry, time.Now())
	}
	if s, ok := tok.Extra("scope").(string); ok && s != "" {
		msg += ", scope " + s
	}
	if tok.RefreshToken != "" {
		msg += ", with a refresh token"
	}
	msg += fmt.Sprintf(" (took %s)", display.Duration(took))
	d.add(name, OK, msg, "")
}
