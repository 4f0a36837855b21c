// Package awscreds manages AWS temporary credentials from STS
// AssumeRoleWithWebIdentity with tokenmgr's engine, and gives aws-sdk-go-v2
// and plain http.Client requests the refresh-and-replay the SDK does not
// do.
//
// It is its own module (github.com/tokenmgr/tokenmgr/awscreds), so that a
// program importing only tokenmgr or tokenmgr/store does not get the AWS
// SDK in its module graph.
//
//	p, err := awscreds.NewFromEnv() // AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_REGION
//	if err != nil { … }
//	defer p.Close()
//	cfg, err := config.LoadDefaultConfig(ctx)
//	p.Configure(&cfg)
//	s3c := s3.NewFromConfig(cfg)
//
// # Credentials
//
// A [Provider] keeps aws.Credentials in a tokenmgr.Cache, the engine of a
// tokenmgr.Client, whose Kind calls STS, tells credentials apart by their
// session token and stores them as a record: they get everything a bearer
// token gets. The expiry STS answers with is the
// truth; the refresh windows scale with it as in package tokenmgr (a
// one-hour session is refreshed in the background 5 to 5.5 minutes before
// it expires, a four-second one a second before, without blocking
// callers). However many goroutines ask, one STS call is made; with a
// store.Locker store (the keyring and the encrypted file), however many
// processes ask, one of them calls STS and the others adopt its
// credentials from the store. Transient STS errors (throttling,
// IDPCommunicationError, 5xx, network) are retried with backoff; others
// (InvalidIdentityToken, ExpiredTokenException, AccessDenied) are returned
// as an [*STSError], which unwraps to a *tokenmgr.TokenError, and
// remembered for a backoff, so a bad web identity does not cost an STS
// call per request. By the root library's rule
// (tokenmgr.TokenError.NetworkFailure), a host name that does not exist
// and a certificate this machine does not trust are not retried either:
// the *tokenmgr.TokenError names the cause at once. An STS endpoint that
// answers with a redirect (a 3xx status) gets a [*RedirectError]
// (errors.Is [ErrRedirect]) at the first answer: the redirect is not
// followed, since the request carries the web identity token, nor
// retried, since the endpoint will redirect again. What an STS error
// means and what to do is said by package awsdiag of the diagnose module
// (Explain, and Run, the AWS checks of tokenmgr doctor), off the SDK
// path.
//
// Config.STSClient takes an STS client of your own (one method, as
// aws-sdk-go-v2's stscreds takes it); by default the Provider makes one
// from Region, STSEndpoint and HTTPClient.
//
// The web identity token comes from Config.WebIdentityTokenFile, re-read
// at every refresh (EKS IRSA, GitHub Actions, GKE and AKS federation), or
// from Config.WebIdentity, any oauth2.TokenSource (a tokenmgr
// Client.TokenSource() for workload identity federation from an OIDC
// issuer; its AccessToken is sent).
//
// # Store
//
// Credentials are stored as a tokenmgr record (package [github.com/tokenmgr/tokenmgr/store/record]) under
// Config.Key, default "aws:" + RoleARN: the session token as access_token,
// with aws_access_key_id and aws_secret_access_key beside it, the expiry,
// and a fingerprint of the configuration (role, session name, endpoint,
// region, duration, web identity origin) so that another configuration
// never adopts them, nor overwrites them: a Provider whose Key holds
// another configuration's credential (an OAuth token, another role's)
// fails with an error wrapping [tokenmgr.ErrKeyInUse]. The store encrypts them (the file store with
// XChaCha20-Poly1305, the keyring by the OS).
//
// # Retry
//
// [Provider.Configure] and [Provider.Transport] replay a request once, with
// fresh credentials and a new signature, when the answer's error code is
// one of [RetryCodes]: InvalidClientTokenId, UnrecognizedClientException,
// ExpiredToken, ExpiredTokenException, RequestExpired, InvalidToken,
// InvalidTokenId and InvalidAccessKeyId (the last ones are how S3 and
// MinIO answer for an expired or revoked temporary key; a Provider's
// credentials are always temporary). The credentials that request was
// signed with are dropped by compare-and-swap: if another request already
// replaced them, the newer ones are used without another STS call. A
// request whose body cannot be rewound is not replayed (the next one gets
// the fresh credentials). A host that rejects fresh credentials too (a
// role in the wrong account, an opt-in region not enabled) has its
// rejections returned as they are for a backoff of 1s doubling to 30s,
// whatever the bodies, by the rule of package tokenmgr's transport; other
// hosts keep their refresh-and-replay.
//
// # Environment
//
// [NewFromEnv] reads:
//
//	AWS_ROLE_ARN                   the role to assume (required)
//	AWS_WEB_IDENTITY_TOKEN_FILE    file holding the web identity token, re-read at every refresh
//	AWS_ROLE_SESSION_NAME          session name (default "tokenmgr")
//	AWS_REGION                     STS region (else AWS_DEFAULT_REGION)
//	AWS_ENDPOINT_URL_STS           STS endpoint (else AWS_ENDPOINT_URL, else the regional one)
//	TOKENMGR_AWS_DURATION          session duration, a Go duration in whole seconds (default 1h)
//	TOKENMGR_AWS_KEY               credential name in the store (default "aws:" + AWS_ROLE_ARN)
//
// With no AWS_WEB_IDENTITY_TOKEN_FILE the web identity token is the
// access token the TOKENMGR_* OAuth variables describe (see package
// tokenmgr). The store is the one TOKENMGR_STORE, TOKENMGR_STORE_PATH and
// TOKENMGR_STORE_PASSPHRASE(_FILE) name; NewFromEnv opens it, so
// [Provider.Close] closes it (a Redis store's connection pool), while a
// Config.Store passed to [New] stays the caller's. A bad value is a
// *envconfig.Error naming the variable.
//
// # Secrets
//
// No log record, error message or String method of this package contains
// a secret access key, session token or web identity token.
package awscreds
