// Package tokenmgr manages OAuth 2.0 and API tokens on the client side, so
// that programs stop failing with "InvalidClientTokenId: The security token
// included in the request is invalid", "ExpiredToken" or "401
// invalid_token".
//
// A [Client] (made by [New] from a [Config], or by [NewFromEnv]) hands out
// a valid token, refreshes it in the background before it expires, and
// keeps it (and a rotated refresh token) in a [store.Store] that survives
// restarts. Its [Client.Transport] attaches the token to every request of
// an *[http.Client] and, when a server says the token is invalid or
// expired, drops it, gets a fresh one and replays the request once.
// [Client.TokenSource] serves libraries that take an
// [oauth2.TokenSource], and [Client.Invalidate] drops a token rejected
// where the transport does not see it.
//
//	c, err := tokenmgr.New(tokenmgr.Config{
//		Source: tokenmgr.ClientCredentials(&clientcredentials.Config{
//			ClientID: id, ClientSecret: secret, TokenURL: tokenURL,
//		}),
//	})
//	if err != nil { … }
//	defer c.Close()
//	resp, err := c.HTTPClient().Get("https://api.example.com/v1/things")
//
// # Refresh
//
// A token fetched with lifetime L is, at any moment, in one of three
// states:
//
//	fresh    more than refreshBefore left   served from memory: an atomic load and a time compare, no lock
//	stale    less than refreshBefore left   served at once; one background refresh starts
//	expired  less than expiryDelta left     callers wait for one shared refresh (or leave on their ctx)
//
// Left at zero, [Config.RefreshBefore] and [Config.ExpiryDelta] scale with the
// lifetime: refreshBefore = min(L/4, 5m) plus up to 10% jitter, so a fleet
// does not refresh in lockstep; expiryDelta = min(L/20, 10s). A one-hour
// token is refreshed 5 to 5.5 minutes early and not used in its last 10
// seconds; a four-second token is refreshed a second early and not used in
// its last 200ms. Set explicitly they are capped at L/2 and L/4, so a token
// is always served for part of its life. A token without expiry (no
// expires_in, or expires_in 0, which golang.org/x/oauth2 reads the same
// way) is served until a server rejects it; a negative expires_in is an
// [ErrBadTokenResponse].
//
// A token response is checked before its token is put in service: the
// access_token must be an RFC 6750 b64token (any visible ASCII with a
// [Config.Attach], which may put it elsewhere than the Authorization header)
// and the token_type a single RFC 9110 token ("Bearer", "DPoP"). Anything
// else (a control character, a space, "Bearer\r\nX-Evil: 1") is an
// ErrBadTokenResponse, and a stored record like it is not served.
//
// However many goroutines ask, one refresh runs at a time per Client
// (golang.org/x/sync/singleflight). With a Store that implements
// [store.Locker] (all of this module's stores do) the refresh runs under the
// store's lock and first re-reads the store: however many processes share
// a credential, one refreshes and the others adopt its token.
//
// A background refresh runs on its own context ([Config.RefreshTimeout]),
// so a caller's cancel does not kill it. When it fails, the token in
// service stays in service and the refresh is retried with jittered
// exponential backoff, each wait at most half the time left; permanent
// errors stop it until expiry, when callers see the error. Transient
// token-endpoint failures (5xx, 429 with Retry-After honoured, timeouts,
// connection errors, temporarily_unavailable) are retried within the
// refresh deadline ([Config.RefusedAttempts] makes a refused connection fail
// after that many attempts instead, and [Config.OnRetry] is told of each
// failed attempt before the wait; a host name that does not exist or an
// untrusted certificate is not retried, and [TokenError.NetworkFailure]
// tells these, a refusal and an unreachable proxy apart; when the deadline
// cuts an attempt short, the error is the answer before it); permanent ones (invalid_client, invalid_grant,
// unauthorized_client, invalid_scope) return at once as a *[TokenError],
// which matches [ErrInvalidClient] and the other sentinels with errors.Is and
// still unwraps to *[oauth2.RetrieveError]. After a refresh fails for good
// (any failure but a transient endpoint error without Retry-After: a
// permanent error, an unusable answer, a Retry-After longer than the
// refresh could wait),
// callers that have no usable token get its error at once for a backoff
// (1s doubling to 30s, or the Retry-After asked for) rather than each
// sending the endpoint a request: a bad client secret is not repeated at
// the rate of the program's calls.
//
// A panic in code the Client runs for its callers (the Source, the Store,
// [Config.OnRefresh], Config.Attach) is recovered and returned to every
// caller waiting on that refresh or request as a *[PanicError] carrying the
// panic value (secrets the Client knows redacted) and the stack; the
// refresh counts as failed and the Client stays usable.
//
// Every wait is bounded: a refresh still running a second after
// Config.RefreshTimeout (a Source without TokenContext, or a Store, that
// ignores its context and never returns) is abandoned, its callers get an
// error wrapping [context.DeadlineExceeded], the next call starts a new
// refresh, and Close returns. The abandoned call's goroutine is left
// running until it returns (at most 4 per Client).
//
// A Source may have three optional methods the Client looks for:
// TokenContext (called with the refresh deadline and the token HTTP client
// in its context), Fingerprint (stored with the token, so a token fetched
// under another configuration is not adopted) and SetRefreshToken (takes a
// rotated refresh token found in the Store); see [Config.Source].
// OnRefresh receives a [RefreshEvent] whose Reason is one of
// [ReasonInitial], [ReasonEarly], [ReasonExpired] or [ReasonInvalid].
//
// A Source should reach the token endpoint on every call: use
// [ClientCredentials] or [RefreshToken]. A caching source (a config's
// TokenSource method, [oauth2.ReuseTokenSource]) or a static token hands back
// the token being replaced; the Client then keeps that token in service,
// logs a warning and reports [ErrSameToken] instead of asking again in a
// loop.
//
// A rotated refresh token is saved to the Store before the new access
// token is handed out, and a refresh token found in the Store wins over the
// seed given in code or the environment.
//
// # Retry
//
// The transport reads at most 64 KiB of a 400, 401 or 403 answer to
// classify it (see [Classifier]), waiting for it at most [ClassifyBodyWait]
// (1s; not at all when the headers decide), and hands the caller the
// intact body: a server that stalls after its headers does not hold the
// request. It
// refreshes and replays once on InvalidClientTokenId,
// UnrecognizedClientException, ExpiredToken, ExpiredTokenException,
// InvalidToken, InvalidAccessKeyId, ExpiredAuthenticationToken,
// InvalidAuthenticationToken, an RFC 6750 error="invalid_token" without a
// claims= parameter, codes added in [Config.InvalidTokenCodes], and a bare
// 401 to a request that carried the token. It never retries on
// insufficient_scope, claims challenges, discovery challenges, AccessDenied,
// clock skew (RequestExpired, RequestTimeTooSkewed), a plain 403 or a 5xx.
// Concurrent rejections of one token cause one refresh. A request body that
// cannot be rewound (GetBody nil) is never sent twice. A second rejection is
// returned to the caller as it came; and since a host that rejects even a
// token fetched after its last rejection rejects every token (a wrong
// audience, the wrong environment), that host's rejections are then passed
// on without a refresh for a backoff of 1s doubling to 30s, rather than cost
// a token request per call. Damping is per host (host and port; at most 256
// tracked), so one misconfigured host does not stop a revoked token from
// being replaced on the others, and it covers requests whose body cannot be
// rewound too. Any answer from the host that is not a rejection ends it.
//
// The token is never sent on a redirect to another origin (scheme, host and
// port: an https to http hop on the same host gets none), nor on a hop
// whose origin cannot be established (a middleware that leaves
// Response.Request unset), never over plain http except to loopback
// ([Config.AllowInsecureHTTP] overrides), and only to [Config.AllowedHosts]
// when set. Token requests follow a redirect only within the token URL's
// origin, so a 307 or 308 cannot re-post the client secret elsewhere. The
// client secret and refresh token never go over plain http except to
// loopback, with no override: [New] refuses a [ClientCredentials] or
// [RefreshToken] source whose token URL is http to another host, as
// NewFromEnv refuses such a TOKENMGR_TOKEN_URL.
//
// # Environment
//
// [NewFromEnv] (and [ReadEnv], for a look before building a Client) reads:
//
//	TOKENMGR_TOKEN_URL              token endpoint (https, or http to loopback)
//	TOKENMGR_ISSUER                 OpenID issuer a person signs in at (tokenmgr login); https, or http to loopback
//	TOKENMGR_CLIENT_ID              client ID
//	TOKENMGR_CLIENT_SECRET          client secret (or _CLIENT_SECRET_FILE: a file holding it)
//	TOKENMGR_SCOPES                 scopes, separated by spaces or commas
//	TOKENMGR_AUDIENCE               sent as "audience" with the client credentials grant
//	TOKENMGR_AUTH_STYLE             header | params | auto (default auto)
//	TOKENMGR_REFRESH_TOKEN          seed for the refresh_token grant; a stored one wins
//	TOKENMGR_ACCESS_TOKEN           a static token, never refreshed (no TOKEN_URL needed)
//	TOKENMGR_KEY                    credential name in the store (default "default")
//	TOKENMGR_REFRESH_BEFORE         Go duration, e.g. 5m (default: scaled to the lifetime)
//	TOKENMGR_EXPIRY_DELTA           Go duration (default: scaled to the lifetime)
//	TOKENMGR_ALLOWED_HOSTS          hosts the token may go to, separated by spaces or commas
//	TOKENMGR_ALLOW_INSECURE_HTTP    true to allow plain http to hosts other than loopback
//	TOKENMGR_STORE                  auto | keyring | file | memory | redis (default auto)
//	TOKENMGR_STORE_PATH             the encrypted file (default under os.UserConfigDir)
//	TOKENMGR_STORE_PASSPHRASE       its passphrase (or _STORE_PASSPHRASE_FILE: a file holding it);
//	                                with redis, the fleet's passphrase, the same on every replica
//	TOKENMGR_REDIS_URL              with TOKENMGR_STORE=redis: redis://[user:password@]host[:port][/db],
//	                                rediss:// for TLS; ?master_name=<name> for Sentinel,
//	                                ?addr=host:port&addr=… for more Cluster nodes
//
// Values, and the contents of the files _FILE variables name, are trimmed
// of surrounding whitespace alike, so a secret is the same either way.
// With TOKENMGR_REFRESH_TOKEN the refresh_token grant is used, otherwise
// client credentials. With TOKENMGR_ISSUER the credential is the one a
// person signed in to with "tokenmgr login" (package login, its own module:
// the program must import it; see [RegisterLogin] and [ErrLoginRequired]).
// TOKENMGR_STORE=auto uses the OS keyring when one
// answers, else the encrypted file when a passphrase is set, else fails
// with an error naming both ways out; it never falls back to plain text. A
// static TOKENMGR_ACCESS_TOKEN needs no store. TOKENMGR_STORE=redis shares
// one token per credential across a fleet through Redis (package
// store/redisstore, its own module: the program must import it, as the
// tokenmgr command does; see [RegisterStore]). A bad value is an *[EnvError]
// naming the variable; a secret is never echoed. Stores are described in
// package store.
//
// # Secrets
//
// No log record, error message, String, LogValue or MarshalJSON of this
// module contains a token, refresh token, client secret or passphrase. A
// token endpoint's answer that quotes the request is redacted in every
// encoding the request carried a secret in (raw, URL-encoded,
// JSON-escaped, inside a Basic header's base64) by a [Redactor], the one
// redaction rule the tokenmgr command uses too.
package tokenmgr
