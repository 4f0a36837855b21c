// Package tokenmgr manages OAuth 2.0 and API tokens on the client side, so
// that programs stop failing with "InvalidClientTokenId: The security token
// included in the request is invalid", "ExpiredToken" or "401
// invalid_token".
//
// A [Client] (from [New] or [NewFromEnv]) hands out a valid token and keeps
// it, with a rotated refresh token, in a [store.Store] that survives
// restarts. [Client.Transport] attaches it to the requests of any
// *[http.Client]; [Client.TokenSource] serves libraries that take an
// [oauth2.TokenSource]. A [Cache] keeps any other kind of credential.
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
// A token is refreshed in the background before it expires, once however
// many goroutines ask and, through a [store.Locker], however many processes
// share the credential. Failures are retried within [Config.RefreshTimeout];
// a permanent one is a *[TokenError] matching [ErrInvalidClient] and the
// other sentinels. See [Client] for the windows and the README's "How
// refresh works" for every rule.
//
// # Retry
//
// When a server says the token is invalid or expired, the transport drops
// it, gets a fresh one and replays the request once; it never sends the
// token to another origin or over plain http except to loopback. See
// [Client.Transport].
//
// # Secrets
//
// No log record, error, String or MarshalJSON of this module contains a
// token, refresh token, client secret or passphrase.
package tokenmgr
