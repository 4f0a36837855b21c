package awscreds

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/awscreds/ststest"
	"github.com/tokenmgr/tokenmgr/classify"
	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

func TestRetrieveAssumesRoleOnce(t *testing.T) {
	f := newFixture(t, nil, nil)
	ctx := t.Context()
	c1, err := f.p.Retrieve(ctx)
	require.NoError(t, err)
	c2, err := f.p.Retrieve(ctx)
	require.NoError(t, err)
	assert.Equal(t, c1, c2)
	assert.EqualValues(t, 1, f.srv.AssumeCalls())

	sess := f.srv.Sessions()
	require.Len(t, sess, 1)
	assert.Equal(t, sess[0].AccessKeyID, c1.AccessKeyID)
	assert.Equal(t, sess[0].SecretAccessKey, c1.SecretAccessKey)
	assert.Equal(t, sess[0].SessionToken, c1.SessionToken)
	assert.Equal(t, "web-identity-token-1", sess[0].WebIdentityToken)
	assert.Equal(t, "test", sess[0].RoleSessionName)
	assert.True(t, c1.CanExpire)
	assert.WithinDuration(t, sess[0].Expiration, c1.Expires, time.Millisecond, "the expiry STS gave is the truth")
	assert.Equal(t, CredentialSource, c1.Source)
}

// Retrieve of credentials in service allocates nothing.
func TestRetrieveHotPathAllocs(t *testing.T) {
	f := newFixture(t, nil, nil)
	ctx := context.Background()
	_, err := f.p.Retrieve(ctx)
	require.NoError(t, err)
	n := testing.AllocsPerRun(100, func() { f.p.Retrieve(ctx) })
	assert.Zero(t, n)
}

// A 4-second credential is refreshed before it expires while calls go on,
// and no call is ever signed with expired credentials: the signed calls
// are verified by the test service, which rejects expired sessions.
func TestShortCredentialsRefreshedAhead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := ststest.NewHandler()
		srv.Lifetime = 4 * time.Second
		f := newFixture(t, srv, nil)
		cfg := awsConfig(srv)
		f.p.Configure(&cfg)
		ctx := context.Background()
		start := time.Now()
		var calls int
		for time.Since(start) < 13*time.Second {
			_, err := callerIdentity(ctx, cfg)
			require.NoError(t, err, "at %v", time.Since(start))
			calls++
			time.Sleep(100 * time.Millisecond)
			synctest.Wait() // let a background refresh finish
		}
		assert.Zero(t, srv.Rejected(), "a call was signed with expired credentials")
		assert.EqualValues(t, calls, srv.SignedOK())
		sess := srv.Sessions()
		require.GreaterOrEqual(t, len(sess), 4)
		// Each session was replaced before it expired: the next one was
		// issued with time to spare.
		for i := 1; i < len(sess); i++ {
			issued := sess[i].Expiration.Add(-srv.Lifetime)
			assert.True(t, issued.Before(sess[i-1].Expiration), "session %d issued %v after its predecessor expired", i, issued.Sub(sess[i-1].Expiration))
		}
		assert.EqualValues(t, len(sess), f.p.Stats().Fetches)
		assert.Zero(t, f.p.Stats().Replays)
		require.NoError(t, f.p.Close())
	})
}

func TestConcurrentColdCallersOneSTSCall(t *testing.T) {
	f := newFixture(t, nil, nil)
	start := make(chan struct{})
	var wg sync.WaitGroup
	got := make([]aws.Credentials, 32)
	errs := make([]error, 32)
	for i := range 32 {
		wg.Go(func() {
			<-start
			got[i], errs[i] = f.p.Retrieve(context.Background())
		})
	}
	close(start)
	wg.Wait()
	for i := range 32 {
		require.NoError(t, errs[i])
		assert.Equal(t, got[0].AccessKeyID, got[i].AccessKeyID)
	}
	assert.EqualValues(t, 1, f.srv.AssumeCalls())
}

// The web identity token file is read afresh at every refresh (kubelet
// rotates it).
func TestTokenFileReadAtEveryRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := ststest.NewHandler()
		srv.Lifetime = 4 * time.Second
		f := newFixture(t, srv, nil)
		ctx := context.Background()
		for i := 1; i <= 3; i++ {
			require.NoError(t, os.WriteFile(f.file, fmt.Appendf(nil, "web-identity-token-%d", i), 0o600))
			_, err := f.p.Retrieve(ctx)
			require.NoError(t, err)
			time.Sleep(4 * time.Second) // expired: the next Retrieve refreshes
		}
		var seen []string
		for _, s := range srv.Sessions() {
			seen = append(seen, s.WebIdentityToken)
		}
		assert.Equal(t, []string{"web-identity-token-1", "web-identity-token-2", "web-identity-token-3"}, seen)
		require.NoError(t, f.p.Close())
	})
}

// The web identity token comes from an oauth2.TokenSource: here a tokenmgr
// Client doing client credentials at an OAuth server (workload identity
// federation).
func TestWebIdentityFromTokenSource(t *testing.T) {
	idp := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	t.Cleanup(idp.Close)
	oidc, err := tokenmgr.New(tokenmgr.Config{Source: tokenmgr.ClientCredentials(&clientcredentials.Config{
		ClientID: idp.ClientID, ClientSecret: idp.ClientSecret, TokenURL: idp.TokenURL(),
	})})
	require.NoError(t, err)
	t.Cleanup(func() { oidc.Close() })
	var mu sync.Mutex
	var presented []string
	srv := ststest.NewServer()
	t.Cleanup(srv.Close)
	srv.SetCheckWebIdentity(func(tok string) *ststest.Error {
		mu.Lock()
		defer mu.Unlock()
		presented = append(presented, tok)
		if !idp.Valid(tok) {
			return ststest.ErrInvalidIdentityToken
		}
		return nil
	})
	f := newFixture(t, srv, func(c *Config) { c.WebIdentityTokenFile, c.WebIdentity = "", oidc.TokenSource() })
	_, err = f.p.Retrieve(t.Context())
	require.NoError(t, err)
	require.Len(t, presented, 1)
	tok, err := oidc.Token(t.Context())
	require.NoError(t, err)
	assert.Equal(t, tok.AccessToken, presented[0])
	assert.EqualValues(t, 1, idp.TokenRequests.Load())
}

// Credentials are saved in the store (encrypted) with every field, and a
// second Provider, as in another process, adopts them without calling STS.
func TestStoreRoundTripAndSharing(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store")
	open := func() store.Store {
		st, err := store.NewEncryptedFile(path, []byte("passphrase"))
		require.NoError(t, err)
		return st
	}
	srv := ststest.NewServer()
	t.Cleanup(srv.Close)
	f1 := newFixture(t, srv, func(c *Config) { c.Store = open() })
	c1, err := f1.p.Retrieve(t.Context())
	require.NoError(t, err)
	require.NoError(t, f1.p.Close())

	raw, err := os.ReadFile(path)
	require.NoError(t, err)
	for _, s := range secretsOf(srv) {
		assert.NotContains(t, string(raw), s, "a secret is in the store file in the clear")
	}

	// Same configuration (the token file's path is part of it).
	f2 := newFixture(t, srv, func(c *Config) { c.Store, c.WebIdentityTokenFile = open(), f1.file })
	c2, err := f2.p.Retrieve(t.Context())
	require.NoError(t, err)
	assert.Equal(t, c1.AccessKeyID, c2.AccessKeyID)
	assert.Equal(t, c1.SecretAccessKey, c2.SecretAccessKey)
	assert.Equal(t, c1.SessionToken, c2.SessionToken)
	assert.True(t, c1.Expires.Equal(c2.Expires))
	assert.EqualValues(t, 1, srv.AssumeCalls())
	assert.EqualValues(t, 1, f2.p.Stats().StoreLoads)

	// Another role's Provider sharing the store and key neither adopts
	// them (the record carries the configuration's fingerprint) nor
	// overwrites them: it fails naming both roles.
	f3 := newFixture(t, srv, func(c *Config) {
		c.Store, c.WebIdentityTokenFile = open(), f1.file
		c.Key, c.RoleARN = "aws:"+testRole, "arn:aws:iam::123456789012:role/other"
	})
	_, err = f3.p.Retrieve(t.Context())
	require.ErrorIs(t, err, tokenmgr.ErrKeyInUse)
	assert.Contains(t, err.Error(), "AWS role "+testRole)
	assert.Contains(t, err.Error(), "AWS role arn:aws:iam::123456789012:role/other")
	assert.EqualValues(t, 1, srv.AssumeCalls())
	c4, err := f2.p.Retrieve(t.Context())
	require.NoError(t, err)
	assert.Equal(t, c1.SessionToken, c4.SessionToken)
}

func TestSTSErrors(t *testing.T) {
	for _, tc := range []struct {
		err       *ststest.Error
		temporary bool
	}{
		{ststest.ErrInvalidIdentityToken, false},
		{ststest.ErrExpiredWebIdentity, false},
		{ststest.ErrAccessDenied, false},
		{ststest.ErrIDPCommunication, true},
		{ststest.ErrThrottling, true},
	} {
		t.Run(tc.err.Code, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			f.srv.FailNext(tc.err)
			c, err := f.p.Retrieve(t.Context())
			if tc.temporary {
				// Retried with backoff inside the refresh: the second attempt succeeds.
				require.NoError(t, err)
				assert.NotEmpty(t, c.AccessKeyID)
				assert.EqualValues(t, 2, f.srv.AssumeCalls())
				return
			}
			require.Error(t, err)
			var se *STSError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.err.Code, se.Code)
			assert.Equal(t, tc.err.Status, se.StatusCode)
			assert.Equal(t, tc.err.Message, se.Message)
			var te *tokenmgr.TokenError
			require.ErrorAs(t, err, &te)
			assert.False(t, te.Temporary)
			assert.Contains(t, err.Error(), tc.err.Code)
			assert.NotContains(t, err.Error(), "web-identity-token-1")
			assert.EqualValues(t, 1, f.srv.AssumeCalls())
			// Remembered for a backoff: the next call does not reach STS.
			_, err = f.p.Retrieve(t.Context())
			require.Error(t, err)
			assert.EqualValues(t, 1, f.srv.AssumeCalls())
		})
	}
}

// A host name that does not exist (NXDOMAIN) and a certificate this
// machine does not trust fail again at every attempt: by the root
// library's rule (TokenError.NetworkFailure) neither is retried, so
// Retrieve returns at once, one attempt, with an error that names the
// cause, instead of retrying until the caller's deadline and ending with
// "context deadline exceeded". A refused connection stays temporary.
func TestSTSNetworkFailures(t *testing.T) {
	tlsSTS := httptest.NewTLSServer(http.NotFoundHandler()) // its CA is not trusted by the SDK's transport
	t.Cleanup(tlsSTS.Close)
	for _, tc := range []struct {
		name, endpoint string
		want           classify.NetworkFailure
		cause          func(t *testing.T, err error)
	}{
		{"no such host", "https://sts.does-not-exist.invalid", classify.NoSuchHost, func(t *testing.T, err error) {
			var de *net.DNSError
			require.ErrorAs(t, err, &de)
			assert.True(t, de.IsNotFound, "%v", de)
		}},
		{"untrusted certificate", tlsSTS.URL, classify.CertificateRejected, func(t *testing.T, err error) {
			var ve *tls.CertificateVerificationError
			require.ErrorAs(t, err, &ve)
			assert.Contains(t, err.Error(), "certificate")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want == classify.NoSuchHost {
				_, err := net.DefaultResolver.LookupHost(t.Context(), "sts.does-not-exist.invalid")
				var de *net.DNSError
				if !errors.As(err, &de) || !de.IsNotFound {
					t.Skipf("skipped: this machine's resolver does not answer NXDOMAIN for .invalid (%v)", err)
				}
			}
			f := newFixture(t, nil, func(c *Config) {
				c.STSEndpoint = tc.endpoint
				c.HTTPClient = nil // the SDK's default transport
			})
			// On a wrong classification Retrieve would retry until this
			// deadline: the bound keeps such a failure quick.
			ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
			defer cancel()
			_, err := f.p.Retrieve(ctx)
			require.Error(t, err)
			require.NoError(t, ctx.Err(), "Retrieve waited for its deadline instead of failing at once: %v", err)
			assert.NotErrorIs(t, err, context.DeadlineExceeded)
			var te *tokenmgr.TokenError
			require.ErrorAs(t, err, &te)
			assert.False(t, te.Temporary)
			assert.LessOrEqual(t, te.Attempts, 1)
			assert.Equal(t, tc.want, te.NetworkFailure())
			tc.cause(t, err)
			assert.NotContains(t, err.Error(), "web-identity-token-1")
		})
	}

	t.Run("connection refused", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		addr := ln.Addr().String()
		require.NoError(t, ln.Close())
		cfg := &Config{RoleARN: testRole, RoleSessionName: "s", WebIdentityTokenFile: filepath.Join(t.TempDir(), "t")}
		require.NoError(t, os.WriteFile(cfg.WebIdentityTokenFile, []byte("web-identity-token-1"), 0o600))
		_, err = newSTSSource(cfg, "http://"+addr, "us-east-1").fetch(t.Context())
		var te *tokenmgr.TokenError
		require.ErrorAs(t, err, &te)
		assert.True(t, te.Temporary, "a refused connection is retried: %v", err)
		assert.Equal(t, classify.ConnectionRefused, te.NetworkFailure())
	})
}

// An STS that echoes the web identity token in its message does not get
// it into the error.
func TestSTSErrorRedactsWebIdentity(t *testing.T) {
	f := newFixture(t, nil, nil)
	f.srv.FailNext(&ststest.Error{Code: "InvalidIdentityToken", Message: "bad token web-identity-token-1", Status: 400})
	_, err := f.p.Retrieve(t.Context())
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "web-identity-token-1")
	assert.Contains(t, err.Error(), "[REDACTED]")
}

// No secret reaches a log record, an error or String.
func TestNoSecretsInLogsErrorsOrString(t *testing.T) {
	f := newFixture(t, nil, nil)
	cfg := awsConfig(f.srv)
	f.p.Configure(&cfg)
	_, err := callerIdentity(t.Context(), cfg)
	require.NoError(t, err)
	f.srv.RevokeAll()
	_, err = callerIdentity(t.Context(), cfg) // replayed with fresh credentials
	require.NoError(t, err)
	f.srv.RejectAll(true)
	_, err = callerIdentity(t.Context(), cfg)
	require.Error(t, err)
	texts := []string{f.logs.String(), err.Error(), f.p.String(), fmt.Sprintf("%v %+v", f.p, f.p)}
	secrets := secretsOf(f.srv)
	require.NotEmpty(t, secrets)
	for _, txt := range texts {
		for _, s := range secrets {
			assert.NotContains(t, txt, s)
		}
	}
	assert.Contains(t, f.logs.String(), "InvalidClientTokenId", "the log says why it replayed")
}

func TestNewRejectsBadConfig(t *testing.T) {
	base := Config{RoleARN: testRole, WebIdentityTokenFile: "/t", Region: "us-east-1"}
	for name, mod := range map[string]func(*Config){
		"RoleARN":              func(c *Config) { c.RoleARN = "" },
		"RoleARN ":             func(c *Config) { c.RoleARN = "role/app" },
		"RoleSessionName":      func(c *Config) { c.RoleSessionName = "a b" },
		"Config.WebIdentity":   func(c *Config) { c.WebIdentityTokenFile = "" },
		"not both":             func(c *Config) { c.WebIdentity = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "x"}) },
		"Duration":             func(c *Config) { c.Duration = 1500 * time.Millisecond },
		"Config.Region":        func(c *Config) { c.Region = "" },
		"Region ":              func(c *Config) { c.Region = "US East" },
		"http is allowed to l": func(c *Config) { c.STSEndpoint = "http://sts.example.com" },
		"user information":     func(c *Config) { c.STSEndpoint = "https://u:p@sts.example.com" },
	} {
		t.Run(name, func(t *testing.T) {
			c := base
			mod(&c)
			p, err := New(c)
			require.Error(t, err)
			assert.Nil(t, p)
			assert.Contains(t, err.Error(), strings.TrimSpace(name))
		})
	}
}

// A panicking web identity source is an error, not a crash.
func TestWebIdentitySourcePanics(t *testing.T) {
	f := newFixture(t, nil, func(c *Config) {
		c.WebIdentityTokenFile, c.WebIdentity = "", panicSource{}
	})
	_, err := f.p.Retrieve(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "panicked")
	assert.Zero(t, f.srv.AssumeCalls())
}

type panicSource struct{}

func (panicSource) Token() (*oauth2.Token, error) { panic("boom") }

// Close ends background refreshes; calls after it fail with ErrClosed
// once a refresh is needed.
func TestCloseStopsRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := ststest.NewHandler()
		srv.Lifetime = 4 * time.Second
		f := newFixture(t, srv, nil)
		_, err := f.p.Retrieve(context.Background())
		require.NoError(t, err)
		require.NoError(t, f.p.Close())
		time.Sleep(5 * time.Second)
		_, err = f.p.Retrieve(context.Background())
		require.ErrorIs(t, err, tokenmgr.ErrClosed)
		assert.EqualValues(t, 1, srv.AssumeCalls())
	})
}

// Config.STSEndpoint left empty is AWS_ENDPOINT_URL_STS, as the SDKs read it.
func TestNewReadsEndpointVariable(t *testing.T) {
	srv := ststest.NewServer()
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ENDPOINT_URL", "https://unused.example.com")
	t.Setenv("AWS_ENDPOINT_URL_STS", srv.URL)
	f := newFixture(t, srv, func(c *Config) { c.STSEndpoint = "" })
	_, err := f.p.Retrieve(t.Context())
	require.NoError(t, err)
	assert.EqualValues(t, 1, srv.AssumeCalls())

	t.Setenv("AWS_ENDPOINT_URL_STS", "http://sts.example.com")
	_, err = New(Config{RoleARN: testRole, WebIdentityTokenFile: "/t", Region: "us-east-1"})
	var ee *envconfig.Error
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "AWS_ENDPOINT_URL_STS", ee.Var)
}

// Invalidate drops the credentials in service, and only those.
func TestInvalidate(t *testing.T) {
	f := newFixture(t, nil, nil)
	c1, err := f.p.Retrieve(t.Context())
	require.NoError(t, err)
	f.p.Invalidate(c1)
	c2, err := f.p.Retrieve(t.Context())
	require.NoError(t, err)
	assert.NotEqual(t, c1.AccessKeyID, c2.AccessKeyID)
	f.p.Invalidate(c1) // already replaced: c2 stays
	c3, err := f.p.Retrieve(t.Context())
	require.NoError(t, err)
	assert.Equal(t, c2.AccessKeyID, c3.AccessKeyID)
	assert.EqualValues(t, 2, f.srv.AssumeCalls())
}

// When STS refuses the web identity token itself (expired by its clock,
// or invalid), the tokenmgr Client it came from drops it, so the next
// attempt presents a fresh one rather than the refused one until the
// Client's own refresh.
func TestRefusedWebIdentityDropped(t *testing.T) {
	idp, srv, env := oauthWebIdentity(t, "AWS_ENDPOINT_URL_STS")
	e, err := ReadEnv(mapLookup(env))
	require.NoError(t, err)
	p, err := e.NewProvider(t.Context())
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })

	var refused string
	srv.SetCheckWebIdentity(func(tok string) *ststest.Error {
		if refused == "" {
			refused = tok
			return ststest.ErrExpiredWebIdentity
		}
		return nil
	})
	_, err = p.Retrieve(t.Context())
	require.Error(t, err)
	assert.EqualValues(t, 1, p.owned.Stats().Invalidations, "the refused web identity token was dropped")
	// The next attempt (after the failure backoff) gets a fresh one.
	tok, err := p.owned.Token(t.Context())
	require.NoError(t, err)
	assert.NotEqual(t, refused, tok.AccessToken)
	assert.EqualValues(t, 2, idp.TokenRequests.Load())
}

// The same with a tokenmgr Client.TokenSource() given in Config.
func TestRefusedWebIdentityDroppedFromTokenSource(t *testing.T) {
	idp := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	t.Cleanup(idp.Close)
	oidc, err := tokenmgr.New(tokenmgr.Config{Source: tokenmgr.ClientCredentials(&clientcredentials.Config{
		ClientID: idp.ClientID, ClientSecret: idp.ClientSecret, TokenURL: idp.TokenURL(),
	})})
	require.NoError(t, err)
	t.Cleanup(func() { oidc.Close() })
	f := newFixture(t, nil, func(c *Config) { c.WebIdentityTokenFile, c.WebIdentity = "", oidc.TokenSource() })
	f.srv.FailNext(ststest.ErrInvalidIdentityToken)
	_, err = f.p.Retrieve(t.Context())
	require.Error(t, err)
	assert.EqualValues(t, 1, oidc.Stats().Invalidations)
}

// A web identity token file that cannot be read fails the refresh at once
// with the reason, naming the file. The *fs.PathError (and its errno) has a
// Timeout method, which made the refresh engine take it for a network
// failure and retry it until the caller's deadline, which then was the
// only error the caller saw.
func TestTokenFileUnreadableFailsAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		srv := ststest.NewHandler()
		f := newFixture(t, srv, nil)
		require.NoError(t, os.Remove(f.file))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		_, err := f.p.Retrieve(ctx)
		require.Error(t, err)
		assert.NotErrorIs(t, err, context.DeadlineExceeded)
		assert.ErrorIs(t, err, fs.ErrNotExist)
		assert.ErrorContains(t, err, f.file)
		assert.Zero(t, time.Since(start), "not retried")
		assert.Zero(t, srv.AssumeCalls())
		require.NoError(t, f.p.Close())
	})
}
