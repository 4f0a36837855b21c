package diagnose

import (
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/classify"
	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
)

// Hint says what to do about an error from tokenmgr, its configuration
// (an *envconfig.Error) or its stores, in the words "tokenmgr doctor"
// uses; "" when there is nothing to add to the error's own message. The
// CLI prints it after a failed command.
func Hint(err error) string {
	_, hint := Explain(err, nil)
	return hint
}

// Explain says what err means and what to do about it, for the
// configuration env (nil when unknown; it lets a hint name the token URL
// and the scopes asked for). msg is err's message, reworded for a token
// endpoint's error. Neither adds a secret to what err says (tokenmgr's
// errors hold none); hint names variables, never their secret values.
func Explain(err error, env *envconfig.Env) (msg, hint string) {
	if err == nil {
		return "", ""
	}
	msg = trimTM(err.Error())
	if h := storeHint(err); h != "" {
		return msg, h
	}
	var te *tokenmgr.TokenError
	if errors.As(err, &te) || errors.Is(err, tokenmgr.ErrBadTokenResponse) {
		return explainTokenError(err, env)
	}
	return msg, configHint(err)
}

func configHint(err error) string {
	var ee *envconfig.Error
	if !errors.As(err, &ee) || strings.HasPrefix(ee.Problem, "not set (") {
		return "" // the problem says what to set
	}
	switch ee.Var {
	case "TOKENMGR_TOKEN_URL":
		return "set TOKENMGR_TOKEN_URL to the token endpoint (https), or TOKENMGR_ACCESS_TOKEN for a static token"
	case "TOKENMGR_CLIENT_ID", "TOKENMGR_CLIENT_SECRET", "TOKENMGR_CLIENT_SECRET_FILE":
		return "set the client ID and secret the authorization server gave this client"
	case "TOKENMGR_REDIS_URL":
		return "set TOKENMGR_REDIS_URL to redis://[user:password@]host[:port][/db], or rediss:// for TLS (Sentinel: ?master_name=<name>; Cluster: ?addr=host:port for each other node)"
	case "TOKENMGR_STORE", "TOKENMGR_STORE_PATH", "TOKENMGR_STORE_PASSPHRASE", "TOKENMGR_STORE_PASSPHRASE_FILE":
		return "TOKENMGR_STORE=file needs TOKENMGR_STORE_PASSPHRASE; keyring needs an OS keyring; memory keeps nothing between runs"
	}
	return "fix " + ee.Var
}

// keyInUseHint is the way out of tokenmgr.ErrKeyInUse: the stored
// credential is kept unless its owner says otherwise.
const keyInUseHint = `give each configuration its own credential name with --key or TOKENMGR_KEY (TOKENMGR_AWS_KEY for AWS credentials); "tokenmgr list" shows the names in use, and "tokenmgr logout --key <name>" deletes a stored credential no longer wanted`

// fromRedis reports whether err comes from the Redis store
// (store/redisstore, whose errors start "redisstore:"): the file store's
// ways out (its path, "logout --reset") do not apply there.
func fromRedis(err error) bool { return strings.Contains(err.Error(), "redisstore: ") }

// resetHint is how to start afresh with a store that cannot be read.
const resetHint = `"tokenmgr logout --reset" deletes the store file (every credential in it; they are fetched again)`

func storeHint(err error) string {
	switch {
	case fromRedis(err) && strings.Contains(err.Error(), "NOPERM"):
		return "the Redis user's ACL refuses a command tokenmgr uses: grant GET, GETRANGE, STRLEN, EXISTS, SCAN, SET, DEL, TIME, EVAL, EVALSHA, PUBLISH and SUBSCRIBE on the store's keys and channels, e.g. ACL SETUSER <user> +@read +@write +@scripting +@pubsub +time ~tokenmgr:* &tokenmgr:*"
	case errors.Is(err, store.ErrUnavailable):
		return "Redis does not answer in time or refuses the connection: check TOKENMGR_REDIS_URL (host, port, rediss:// for TLS, user and password, db); meanwhile each replica fetches its own tokens"
	case errors.Is(err, store.ErrWrongKey) && fromRedis(err):
		return "TOKENMGR_STORE_PASSPHRASE differs from the one the fleet's tokens in Redis were written with: every replica must use the same passphrase"
	case errors.Is(err, store.ErrTampered) && fromRedis(err):
		return `the value in Redis fails authentication: modified by something with write access to Redis, or another credential's; tokenmgr never overwrites it: "tokenmgr logout" (with --key) deletes it for the fleet, and the next token request fetches a new one`
	case errors.Is(err, store.ErrFormat) && fromRedis(err):
		return `the value in Redis is not a tokenmgr value, or was written by a newer tokenmgr: check that TOKENMGR_REDIS_URL (host, db) is this fleet's Redis and every replica runs the same tokenmgr; "tokenmgr logout" (with --key) deletes it`
	case errors.Is(err, store.ErrWrongKey):
		return "TOKENMGR_STORE_PASSPHRASE does not open the file: use the passphrase it was written with, or start afresh: " + resetHint
	case errors.Is(err, store.ErrTampered):
		return "the file was modified or damaged; start afresh: " + resetHint
	case errors.Is(err, store.ErrKeyringUnavailable):
		return "" // its message says how to get a keyring or use the file
	case errors.Is(err, store.ErrUnsafePermissions) && !strings.Contains(err.Error(), "chmod"):
		// A shared directory (/tmp) or another user's: another path, never
		// a chmod of a directory others need.
		return "set TOKENMGR_STORE_PATH to a file in a directory of your own (mkdir -m 700), or unset it for the default"
	case errors.Is(err, tokenmgr.ErrKeyInUse):
		return keyInUseHint
	case errors.Is(err, record.ErrFormat):
		return `"tokenmgr logout" deletes the unreadable record`
	case errors.Is(err, store.ErrFormat):
		return "not a tokenmgr store file, or written by a newer tokenmgr: set TOKENMGR_STORE_PATH to another file, or move this one away"
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return "set TOKENMGR_STORE_PATH to a file in a directory this user can create and write"
	}
	return ""
}

// explainTokenError says what a failed token request means.
func explainTokenError(err error, env *envconfig.Env) (msg, hint string) {
	var te *tokenmgr.TokenError
	status := ""
	if errors.As(err, &te) && te.StatusCode != 0 {
		status = fmt.Sprintf(" (HTTP %d)", te.StatusCode)
	}
	codeMsg := func(code string) string {
		m := code + ": " + classify.CodeHint(code)
		if te != nil && te.Description != "" {
			m += ": " + te.Description
		}
		return m + status
	}
	tokenURL := "TOKENMGR_TOKEN_URL"
	if env != nil && env.TokenURL != "" {
		tokenURL += " (" + display.URL(env.TokenURL) + ")"
	}
	switch {
	case errors.Is(err, tokenmgr.ErrInvalidClient):
		return codeMsg("invalid_client"),
			"check TOKENMGR_CLIENT_ID and TOKENMGR_CLIENT_SECRET (or its _FILE) against the authorization server; the secret may have been rotated"
	case errors.Is(err, tokenmgr.ErrInvalidGrant):
		return codeMsg("invalid_grant"),
			`get a new refresh token (sign in again), set TOKENMGR_REFRESH_TOKEN, and run "tokenmgr logout" so a dead stored one does not win over it`
	case errors.Is(err, tokenmgr.ErrUnauthorizedClient):
		return codeMsg("unauthorized_client"),
			"allow the grant for this client at the authorization server, or use the grant it allows"
	case errors.Is(err, tokenmgr.ErrInvalidScope):
		requested := "(unknown)"
		if env != nil {
			requested = "none"
			if len(env.Scopes) > 0 {
				requested = strings.Join(env.Scopes, " ")
			}
		}
		return codeMsg("invalid_scope"),
			"check TOKENMGR_SCOPES (requested: " + requested + ") against what the client may ask for"
	case errors.Is(err, tokenmgr.ErrBadTokenResponse):
		return trimTM(err.Error()), "the token endpoint answered success without a usable token; check " + tokenURL + " points at the token endpoint"
	case te != nil && te.Code != "":
		return trimTM(te.Error()), ""
	case te != nil && (te.StatusCode == http.StatusNotFound || te.StatusCode == http.StatusMethodNotAllowed):
		return trimTM(te.Error()), "no token endpoint at " + tokenURL + ": check its path against the authorization server's documentation or its OIDC discovery document (token_endpoint)"
	case te != nil && te.StatusCode != 0 && plainToTLS(te.Description):
		return trimTM(te.Error()), "the server speaks https at that port: use an https:// URL in " + tokenURL
	case te != nil && te.StatusCode != 0:
		return trimTM(te.Error()), "check " + tokenURL + ": the server did not answer like an OAuth token endpoint"
	case te != nil:
		return NetworkHint(te, "the token endpoint", tokenURL)
	}
	return trimTM(err.Error()), ""
}

// plainToTLS reports whether a server's answer says a plain http request
// came to its TLS port (Go, nginx and Apache httpd words).
func plainToTLS(answer string) bool {
	a := strings.ToLower(answer)
	for _, w := range []string{"http request to an https server", "plain http request was sent to https port", "speaking plain http to an ssl-enabled server"} {
		if strings.Contains(a, w) {
			return true
		}
	}
	return false
}

// NetworkHint says what a request that got no answer means (te carries no
// status: see [tokenmgr.TokenError.NetworkFailure]) and what to check.
// name says what was asked ("the token endpoint", "STS"), where names the
// setting that points at it ("TOKENMGR_TOKEN_URL (https://…)"). It is the
// one wording of these hints, for this package and for awscreds.
func NetworkHint(te *tokenmgr.TokenError, name, where string) (msg, hint string) {
	msg = "cannot reach " + name
	if te.Err != nil {
		msg += ": " + trimURLError(te.Err)
	}
	if te.Attempts > 1 {
		msg += fmt.Sprintf(" (after %d attempts)", te.Attempts)
	}
	switch te.NetworkFailure() {
	case classify.NoSuchHost:
		return msg, "the host name does not exist: check " + where + " for a typo"
	case classify.CertificateRejected:
		return msg, "this machine does not trust the TLS certificate of " + where + " (self-signed, expired, or for another host): fix the certificate, or add its CA to the system's trust store (or SSL_CERT_FILE)"
	case classify.ConnectionRefused:
		return msg, "nothing listens there: check the host and port of " + where
	case classify.ProxyFailure:
		return msg, "the proxy (HTTPS_PROXY or HTTP_PROXY) could not be reached, so " + where + " was never asked: check the proxy, or add the host of " + name + " to NO_PROXY"
	case classify.NotTLS:
		return msg, "the server at that host and port speaks plain http, not https: check the port of " + where + " (the server's TLS one); plain http is allowed for loopback only"
	}
	return msg, "check " + where + ", the network and any proxy"
}
