package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tokenmgr/tokenmgr/diagnose"
	"github.com/tokenmgr/tokenmgr/diagnose/awsdiag"
)

var doctorCommand = &command{
	name:    "doctor",
	summary: "check each thing that can go wrong, one line per check",
	help: `Checks each cause of a token problem and prints one line per check:
OK, WARN or FAIL with a hint (SKIP when a check cannot apply). The checks
are those of the Go package github.com/tokenmgr/tokenmgr/diagnose, which a
service can run at start-up.

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

With AWS_ROLE_ARN set, the AWS checks of package awscreds follow (the
OAuth checks above run only when TOKENMGR_TOKEN_URL or _ACCESS_TOKEN is
set, as the web identity token may come from them):

  aws configuration  the AWS_* variables; role, region, STS endpoint
  web identity       the token file, its iss, aud, sub and exp
  clock (STS)        local time against STS's Date header
  stored credentials those credential_process hands out, tested with a
                     signed sts:GetCallerIdentity before new ones are
                     fetched (rejected: --force-refresh replaces them)
  sts                a real AssumeRoleWithWebIdentity, its error explained by
                     cause: clock skew, expired web identity, wrong audience,
                     unknown issuer, trust policy
  aws credentials    a signed sts:GetCallerIdentity: account and ARN

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

func runDoctor(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	// With AWS_ROLE_ARN set, the AWS checks (package awscreds) follow the
	// OAuth ones, which run only when an OAuth configuration is set (the
	// web identity token may come from it).
	_, withAWS := o.lookup("AWS_ROLE_ARN")
	_, withURL := o.lookup("TOKENMGR_TOKEN_URL")
	_, withStatic := o.lookup("TOKENMGR_ACCESS_TOKEN")
	r := &diagnose.Report{}
	if !withAWS || withURL || withStatic {
		r = diagnose.Run(ctx, diagnose.Options{
			Lookup:  o.lookup,
			Offline: o.offline,
			Timeout: min(o.timeout, 15*time.Second),
		})
	}
	if withAWS {
		r.Add(awsdiag.Run(ctx, awsdiag.Options{
			Lookup:          o.lookup,
			Offline:         o.offline,
			Timeout:         min(o.timeout, 15*time.Second),
			RefusedAttempts: refusedAttempts,
		})...)
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return fail(stderr, "doctor", err)
		}
	} else {
		printChecks(stdout, r, useColor(stdout, o.lookup))
	}
	if !r.OK() {
		return exitFail
	}
	return exitOK
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

var colors = map[diagnose.Status]string{diagnose.OK: "\x1b[32m", diagnose.Warn: "\x1b[33m", diagnose.Fail: "\x1b[31m", diagnose.Skip: "\x1b[2m"}

func printChecks(w io.Writer, out *diagnose.Report, color bool) {
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
		if c.Hint != "" && (c.Status == diagnose.Fail || c.Status == diagnose.Warn) {
			line += "; hint: " + c.Hint
		}
		fmt.Fprintln(w, line)
	}
	var b strings.Builder
	if n := out.Failed(); n > 0 {
		fmt.Fprintf(&b, "%d failed", n)
	} else {
		b.WriteString("no check failed")
	}
	if n := out.Warnings(); n > 0 {
		fmt.Fprintf(&b, ", %d warning", n)
		if n > 1 {
			b.WriteString("s")
		}
	}
	fmt.Fprintln(w, b.String())
}
