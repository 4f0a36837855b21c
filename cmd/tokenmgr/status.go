package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tokenmgr/tokenmgr/diagnose/jwtinfo"
	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/store/record"
)

var statusCommand = &command{
	name:    "status",
	summary: "show what is held for the credential (never the token)",
	help: `Shows what is held for the credential: the store it is in, the
configuration that saved it (grant, token URL and client ID, or AWS role;
"tokenmgr list" shows every credential's), the token type, its expiry
(absolute and relative), its scopes, whether a refresh token and an ID
token are held, and for a JWT access token the non-secret claims iss,
sub, aud, exp, iat and nbf with the header's alg and kid.

It reads the store only: no network, and it works without the
TOKEN_URL/CLIENT_ID/CLIENT_SECRET variables. With a static
TOKENMGR_ACCESS_TOKEN and no store it describes that token. It never
prints a token or any secret.

Exit status: 0 when a credential is held (even an expired one); 1 when
nothing is held or the store cannot be read; 2 for a usage error.`,
	flags: func(fs *flag.FlagSet, o *options) {
		fs.BoolVar(&o.json, "json", false, "print JSON for scripts")
	},
	run: runStatus,
}

// statusJSON is the --json output of status.
type statusJSON struct {
	Credential       string     `json:"credential"`
	Store            string     `json:"store"`
	Source           string     `json:"source"` // "store", "static" or "" when nothing is held
	Held             bool       `json:"held"`
	Holds            string     `json:"holds,omitempty"`         // "AWS credentials", "an OAuth token", ...
	AccessKeyID      string     `json:"access_key_id,omitempty"` // AWS credentials' key ID (not a secret)
	Configuration    string     `json:"configuration,omitempty"` // the configuration that saved it, never a secret
	TokenType        string     `json:"token_type,omitempty"`
	Format           string     `json:"format,omitempty"` // jwt, jwe, opaque or malformed
	FormatError      string     `json:"format_error,omitempty"`
	Expiry           *time.Time `json:"expiry,omitempty"`
	ExpiresInSeconds *int64     `json:"expires_in_seconds,omitempty"` // negative once expired
	Expired          bool       `json:"expired"`
	Obtained         *time.Time `json:"obtained,omitempty"`
	Scopes           []string   `json:"scopes,omitempty"`
	RefreshToken     bool       `json:"refresh_token"`
	IDToken          bool       `json:"id_token"`
	JWT              *jwtJSON   `json:"jwt,omitempty"`
	IDTokenJWT       *jwtJSON   `json:"id_token_jwt,omitempty"` // the id_token's header and non-secret claims
	Error            string     `json:"error,omitempty"`        // why nothing could be read
}

type jwtJSON struct {
	Alg    string          `json:"alg"`
	Kid    string          `json:"kid,omitempty"`
	Typ    string          `json:"typ,omitempty"`
	Claims *jwtinfo.Claims `json:"claims,omitempty"`
}

func runStatus(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	// With --json a failure is JSON on stdout too, so a script reads one
	// shape whatever happened.
	failed := func(out statusJSON, err error) int {
		if o.json {
			out.Error = display.OneLine(strings.TrimPrefix(err.Error(), "tokenmgr: "))
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			enc.Encode(out)
		}
		return fail(stderr, "status", err)
	}
	env, err := envconfig.Read(o.lookup, envconfig.NeedStore)
	if err != nil {
		return failed(statusJSON{}, err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	st, err := env.OpenStore(ctx)
	if err != nil {
		return failed(statusJSON{Credential: env.Key}, err)
	}
	out := statusJSON{Credential: env.Key, Store: storeName(st)}
	var rec *record.Record
	switch {
	case st != nil:
		rec, err = record.Load(ctx, st, env.Key)
		if err != nil {
			return failed(out, err)
		}
		if rec != nil {
			out.Source = "store"
		}
	case env.AccessToken != "":
		rec = &record.Record{AccessToken: env.AccessToken, TokenType: "Bearer"}
		out.Source = "static"
	}
	now := time.Now()
	if rec != nil {
		describe(&out, rec, now)
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fail(stderr, "status", err)
		}
	} else {
		printStatus(stdout, &out, now)
	}
	if !out.Held {
		return exitFail
	}
	return exitOK
}

// describe fills out from rec; it copies no token.
func describe(out *statusJSON, rec *record.Record, now time.Time) {
	out.Held = true
	out.Holds, out.Configuration = rec.Kind(), rec.Configuration()
	out.AccessKeyID = rec.AWSAccessKeyID
	out.RefreshToken = rec.RefreshToken != ""
	out.IDToken = rec.IDToken != ""
	out.Scopes = strings.Fields(rec.Scope)
	if !rec.Obtained.IsZero() {
		t := rec.Obtained
		out.Obtained = &t
	}
	if rec.IDToken != "" {
		if info, err := jwtinfo.Parse(rec.IDToken); err == nil && info.Format == jwtinfo.JWS {
			c := info.Claims
			out.IDTokenJWT = &jwtJSON{Alg: info.Header.Alg, Kid: info.Header.Kid, Typ: info.Header.Typ, Claims: &c}
		}
	}
	if rec.AccessToken == "" {
		return // a refresh token alone
	}
	out.TokenType = display.TokenType(rec.TokenType)
	exp := rec.Expiry
	info, err := jwtinfo.Parse(rec.AccessToken)
	switch {
	case err != nil:
		out.Format = "malformed"
		out.FormatError = err.Error()
	default:
		out.Format = string(info.Format)
		if info.Format != jwtinfo.Opaque {
			j := &jwtJSON{Alg: info.Header.Alg, Kid: info.Header.Kid, Typ: info.Header.Typ}
			if info.Format == jwtinfo.JWS {
				c := info.Claims
				j.Claims = &c
				if exp.IsZero() && c.Expiry != nil {
					exp = *c.Expiry
				}
			}
			out.JWT = j
		}
	}
	if !exp.IsZero() {
		out.Expiry = &exp
		secs := int64(exp.Sub(now) / time.Second)
		out.ExpiresInSeconds = &secs
		out.Expired = !exp.After(now)
	}
}

func printStatus(w io.Writer, s *statusJSON, now time.Time) {
	if !s.Held {
		fmt.Fprintf(w, "nothing stored for credential %q in %s\n", s.Credential, s.Store)
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "%s\t%s\n", k, v) }
	row("credential", s.Credential)
	if s.Source == "static" {
		row("source", "TOKENMGR_ACCESS_TOKEN (static, not stored, never refreshed)")
	} else {
		row("store", s.Store)
	}
	if s.Configuration != "" {
		row("saved by", s.Configuration)
	}
	aws := s.AccessKeyID != "" // AWS credentials: no scopes, refresh or ID token
	switch {
	case aws:
		row("type", "AWS temporary credentials, access key ID "+s.AccessKeyID)
	case s.TokenType == "":
		row("access token", "none (a refresh token alone)")
	}
	if s.TokenType != "" && !aws {
		kind := s.Format
		switch {
		case s.Format == "malformed":
			kind = s.FormatError
		case s.JWT != nil:
			kind = fmt.Sprintf("%s, alg %s", strings.ToUpper(s.Format), s.JWT.Alg)
			if s.JWT.Kid != "" {
				kind += ", kid " + s.JWT.Kid
			}
		}
		row("type", s.TokenType+" ("+kind+")")
	}
	if s.TokenType != "" {
		switch {
		case s.Expiry == nil:
			row("expires", "unknown (no expiry given)")
		case s.Expired:
			row("expires", fmt.Sprintf("%s (EXPIRED %s)", display.Stamp(*s.Expiry), display.Relative(*s.Expiry, now)))
		default:
			row("expires", fmt.Sprintf("%s (%s)", display.Stamp(*s.Expiry), display.Relative(*s.Expiry, now)))
		}
	}
	if s.Obtained != nil {
		row("obtained", fmt.Sprintf("%s (%s)", display.Stamp(*s.Obtained), display.Relative(*s.Obtained, now)))
	}
	if len(s.Scopes) > 0 {
		row("scopes", strings.Join(s.Scopes, " "))
	} else if s.Source == "store" && !aws {
		row("scopes", "none reported")
	}
	if s.Source == "store" && !aws {
		row("refresh token", heldOrNot(s.RefreshToken))
		row("id token", heldOrNot(s.IDToken))
	}
	claimRows(row, "", s.JWT, now)
	claimRows(row, "id token ", s.IDTokenJWT, now)
	tw.Flush()
}

// claimRows prints a JWT's non-secret claims, each label after prefix.
func claimRows(row func(k, v string), prefix string, j *jwtJSON, now time.Time) {
	if j == nil || j.Claims == nil {
		return
	}
	c := j.Claims
	opt := func(k, v string) {
		if v != "" {
			row(prefix+k, v)
		}
	}
	// Claims are the token's text, signed or not: escapes and newlines
	// in them must not reach the terminal.
	opt("issuer (iss)", display.Printable(c.Issuer, 200))
	opt("subject (sub)", display.Printable(c.Subject, 200))
	opt("email", display.Printable(c.Email, 200))
	opt("name", display.Printable(c.Name, 200))
	opt("audience (aud)", display.Printable(strings.Join(c.Audience, ", "), 200))
	for _, t := range []struct {
		k string
		v *time.Time
	}{{"expiry (exp)", c.Expiry}, {"issued (iat)", c.IssuedAt}, {"not before (nbf)", c.NotBefore}} {
		if t.v != nil {
			row(prefix+t.k, fmt.Sprintf("%s (%s)", display.Stamp(*t.v), display.Relative(*t.v, now)))
		}
	}
}

func heldOrNot(b bool) string {
	if b {
		return "held"
	}
	return "none"
}
