package tokenmgr_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/classify"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// unreachableClient is a Client whose refreshes give up after
// refreshTimeout. Where the first attempt should fail for good, the timeout
// is a bound, long enough for a TLS handshake or a DNS lookup on a loaded
// machine: a deadline there would hide the error under test.
func unreachableClient(t *testing.T, tokenURL string, refreshTimeout time.Duration) *tokenmgr.Client {
	t.Helper()
	c, err := tokenmgr.New(tokenmgr.Config{
		Source:         tokenmgr.ClientCredentials(&clientcredentials.Config{ClientID: "c", ClientSecret: "s3cret", TokenURL: tokenURL}),
		RefreshTimeout: refreshTimeout,
	})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// A host name that does not exist is not retried: asking again cannot
// mend a typo.
func TestNoSuchHostIsNotRetried(t *testing.T) {
	c := unreachableClient(t, "https://no-such-host.invalid/token", 15*time.Second)
	_, err := c.Token(context.Background())
	var te *tokenmgr.TokenError
	require.ErrorAs(t, err, &te)
	var de *net.DNSError
	require.ErrorAs(t, err, &de, "%v", err)
	if !de.IsNotFound {
		t.Skipf("this resolver does not answer NXDOMAIN for .invalid: %v", de)
	}
	assert.False(t, te.Temporary)
	assert.LessOrEqual(t, te.Attempts, 1)
	assert.NotContains(t, err.Error(), "attempts")
	assert.Equal(t, classify.NoSuchHost, te.NetworkFailure())
}

// A refused connection is retried until the refresh deadline, and the
// error says how many attempts were made.
func TestRetriedErrorCountsAttempts(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	c := unreachableClient(t, "http://"+addr+"/token", 2*time.Second) // retried until then
	_, err = c.Token(context.Background())
	var te *tokenmgr.TokenError
	require.ErrorAs(t, err, &te)
	assert.True(t, te.Temporary)
	assert.Greater(t, te.Attempts, 1)
	assert.Contains(t, err.Error(), "attempts)")
	assert.Equal(t, classify.ConnectionRefused, te.NetworkFailure())
	assert.False(t, errors.Is(err, tokenmgr.ErrInvalidClient))
}

// A certificate this machine does not trust is not retried either.
func TestUntrustedCertificateIsNotRetried(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	c := unreachableClient(t, srv.URL+"/token", 15*time.Second) // http.DefaultClient: the test CA is not trusted
	_, err := c.Token(context.Background())
	var te *tokenmgr.TokenError
	require.ErrorAs(t, err, &te)
	assert.False(t, te.Temporary, "%v", err)
	assert.LessOrEqual(t, te.Attempts, 1)
	assert.Contains(t, err.Error(), "certificate")
	assert.Equal(t, classify.CertificateRejected, te.NetworkFailure())
}

// An https token URL whose server speaks plain http is not retried: the
// handshake got an HTTP answer, which the next attempt gets too. Before,
// it was retried until the deadline (14 attempts in 30 s) as a network
// failure.
func TestPlainHTTPServerAtHTTPSURLIsNotRetried(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	c := unreachableClient(t, "https://"+srv.Listener.Addr().String()+"/token", 15*time.Second)
	_, err := c.Token(context.Background())
	var te *tokenmgr.TokenError
	require.ErrorAs(t, err, &te)
	assert.False(t, te.Temporary, "%v", err)
	assert.LessOrEqual(t, te.Attempts, 1)
	assert.Equal(t, classify.NotTLS, te.NetworkFailure())
	assert.True(t, te.NetworkFailure().Permanent())
}

// The reverse, an http URL at a TLS port, shows what the server said.
func TestHTTPURLAtTLSPortShowsTheAnswer(t *testing.T) {
	srv := httptest.NewTLSServer(http.NotFoundHandler())
	defer srv.Close()
	c := unreachableClient(t, "http://"+srv.Listener.Addr().String()+"/token", 15*time.Second)
	_, err := c.Token(context.Background())
	var te *tokenmgr.TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, http.StatusBadRequest, te.StatusCode)
	assert.Contains(t, err.Error(), "answered 400: Client sent an HTTP request to an HTTPS server")
}

// NetworkFailure is NotNetwork when the endpoint answered, and
// OtherNetwork when the connection was cut before an answer came.
func TestNetworkFailureOfAnswersAndCutConnections(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/cut" {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				conn.Close() // no answer at all
			}
			return
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	for path, want := range map[string]classify.NetworkFailure{"/token": classify.NotNetwork, "/cut": classify.OtherNetwork} {
		c := unreachableClient(t, srv.URL+path, time.Second) // retried until then
		_, err := c.Token(context.Background())
		var te *tokenmgr.TokenError
		require.ErrorAs(t, err, &te, path)
		assert.Equal(t, want, te.NetworkFailure(), "%s: %v", path, err)
	}
	assert.Equal(t, classify.NotNetwork, (*tokenmgr.TokenError)(nil).NetworkFailure())
	assert.Equal(t, classify.NotNetwork, (&tokenmgr.TokenError{Code: "invalid_client", Err: errors.New("x")}).NetworkFailure())
	for f, name := range map[classify.NetworkFailure]string{
		classify.NotNetwork: "not a network failure", classify.NoSuchHost: "no such host",
		classify.ConnectionRefused: "connection refused", classify.CertificateRejected: "certificate rejected",
		classify.OtherNetwork: "network failure", classify.ProxyFailure: "proxy failure", classify.NotTLS: "server does not speak TLS",
		classify.NetworkFailure(99): "NetworkFailure(99)",
	} {
		assert.Equal(t, name, f.String())
	}
}

// closedPort returns a loopback address where nothing listens: a
// connection to it is refused at once.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// retryEvents collects the OnRetry events of a Client.
type retryEvents struct {
	mu     sync.Mutex
	events []tokenmgr.RetryEvent
}

func (r *retryEvents) add(ev tokenmgr.RetryEvent) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

func (r *retryEvents) list() []tokenmgr.RetryEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]tokenmgr.RetryEvent(nil), r.events...)
}

// With Config.RefusedAttempts, a refused connection fails after that many
// attempts, long before RefreshTimeout; each failed attempt but the last
// is reported to OnRetry, and the error counts them.
func TestRefusedAttemptsBoundARefusedConnection(t *testing.T) {
	tokenURL := "http://" + closedPort(t) + "/token"
	var got retryEvents
	c, err := tokenmgr.New(tokenmgr.Config{
		Source:          tokenmgr.ClientCredentials(&clientcredentials.Config{ClientID: "c", ClientSecret: "s3cret", TokenURL: tokenURL}),
		RefreshTimeout:  time.Minute, // a bound the refusal must not wait for
		RefusedAttempts: 3,
		OnRetry:         got.add,
	})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = c.Token(ctx)
	require.NoError(t, ctx.Err(), "the refresh waited for its deadline instead of giving up after 3 refusals: %v", err)
	var te *tokenmgr.TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, 3, te.Attempts)
	assert.Contains(t, err.Error(), "connection refused (after 3 attempts)")
	evs := got.list()
	require.Len(t, evs, 2, "one event per failed attempt that is retried")
	for i, ev := range evs {
		assert.Equal(t, i+1, ev.Attempt)
		assert.Equal(t, tokenmgr.DefaultKey, ev.Key)
		assert.Positive(t, ev.Wait)
		require.ErrorAs(t, ev.Err, &te)
		assert.True(t, te.Temporary)
		assert.Contains(t, ev.Err.Error(), tokenURL)
		assert.Contains(t, ev.Err.Error(), "connection refused")
		assert.NotContains(t, ev.Err.Error(), "s3cret")
	}
}

// RefusedAttempts bounds refusals only: a 503 is retried on until the
// endpoint answers, each retry reported to OnRetry.
func TestRefusedAttemptsLeaveOtherFailuresRetried(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	var mu sync.Mutex
	failures := 3
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != "/token" || failures == 0 {
			return false
		}
		failures--
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
		return true
	})
	var got retryEvents
	c, err := tokenmgr.New(tokenmgr.Config{
		Source: tokenmgr.ClientCredentials(&clientcredentials.Config{
			ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, TokenURL: srv.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader,
		}),
		RefreshTimeout:  time.Minute,
		RefusedAttempts: 1,
		OnRetry:         got.add,
	})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tok, err := c.Token(ctx)
	require.NoError(t, err)
	assert.True(t, srv.Valid(tok.AccessToken))
	evs := got.list()
	require.Len(t, evs, 3)
	for i, ev := range evs {
		assert.Equal(t, i+1, ev.Attempt)
		var te *tokenmgr.TokenError
		require.ErrorAs(t, ev.Err, &te)
		assert.Equal(t, http.StatusServiceUnavailable, te.StatusCode)
	}
}

// A panic in OnRetry ends the refresh with a *PanicError; a negative
// RefusedAttempts is a configuration error.
func TestOnRetryPanicAndNegativeRefusedAttempts(t *testing.T) {
	c, err := tokenmgr.New(tokenmgr.Config{
		Source:         tokenmgr.ClientCredentials(&clientcredentials.Config{ClientID: "c", ClientSecret: "s3cret", TokenURL: "http://" + closedPort(t) + "/token"}),
		RefreshTimeout: time.Minute,
		OnRetry:        func(tokenmgr.RetryEvent) { panic("hook failed") },
	})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err = c.Token(ctx)
	var pe *tokenmgr.PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "OnRetry", pe.Where)

	_, err = tokenmgr.New(tokenmgr.Config{Source: tokenmgr.ClientCredentials(&clientcredentials.Config{TokenURL: "https://auth.example/token"}), RefusedAttempts: -1})
	assert.ErrorContains(t, err, "RefusedAttempts")
}

// When the refresh deadline cuts an attempt short, the error is the
// endpoint's answer before it (here a 503), not the deadline, and it
// counts the cut attempt.
func TestDeadlineCutAttemptKeepsTheEndpointsAnswer(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	testDone := make(chan struct{})
	defer close(testDone) // before srv.Close, which waits for the handler
	var calls atomic.Int64
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/token" {
			return false
		}
		if calls.Add(1) == 1 {
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return true
		}
		io.Copy(io.Discard, r.Body) // so that the server notices the client going away
		select {                    // the second attempt hangs until the client gives up
		case <-r.Context().Done():
		case <-testDone:
		}
		return true
	})
	c := unreachableClient(t, srv.TokenURL(), 2*time.Second)
	_, err := c.Token(context.Background())
	var te *tokenmgr.TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, http.StatusServiceUnavailable, te.StatusCode, "%v", err)
	assert.Equal(t, 2, te.Attempts)
	assert.Equal(t, classify.NotNetwork, te.NetworkFailure())
	assert.NotContains(t, err.Error(), "deadline")
	assert.EqualValues(t, 2, calls.Load())
}

// An attempt that times out (TokenTimeout) wraps the Source's
// *TokenError; the error the refresh ends with still counts its attempts
// where errors.As finds them.
func TestAttemptTimeoutsAreCounted(t *testing.T) {
	src := hangingSource{}
	c, err := tokenmgr.New(tokenmgr.Config{Source: src, TokenTimeout: 50 * time.Millisecond, RefreshTimeout: time.Second})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Token(context.Background())
	var te *tokenmgr.TokenError
	require.ErrorAs(t, err, &te)
	assert.Greater(t, te.Attempts, 1, "%v", err)
	assert.Contains(t, err.Error(), fmt.Sprintf("(after %d attempts)", te.Attempts))
}

// hangingSource's requests never answer: each waits for its context.
type hangingSource struct{}

func (hangingSource) Token() (*oauth2.Token, error) { return nil, errors.New("unused") }

func (hangingSource) TokenContext(ctx context.Context) (*oauth2.Token, error) {
	<-ctx.Done()
	return nil, &tokenmgr.TokenError{Temporary: true, Err: ctx.Err()}
}

// A proxy that cannot be reached (refused, or a proxy host name that
// does not exist) is a ProxyFailure, retried like any other network
// failure: not a refusal at the token URL (RefusedAttempts does not cut it
// short, and the token endpoint's host is not blamed), nor a mistyped
// token URL host.
func TestProxyFailureIsNotARefusalAtTheTokenURL(t *testing.T) {
	for name, proxyHost := range map[string]string{"refused": closedPort(t), "no such host": "no-such-proxy.invalid:3128"} {
		t.Run(name, func(t *testing.T) {
			proxy := &url.URL{Scheme: "http", Host: proxyHost}
			var got retryEvents
			c, err := tokenmgr.New(tokenmgr.Config{
				Source:          tokenmgr.ClientCredentials(&clientcredentials.Config{ClientID: "c", ClientSecret: "s3cret", TokenURL: "https://auth.example.com/token"}),
				TokenHTTPClient: &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}},
				RefreshTimeout:  time.Second,
				RefusedAttempts: 1,
				OnRetry:         got.add,
			})
			require.NoError(t, err)
			defer c.Close()
			_, err = c.Token(context.Background())
			var te *tokenmgr.TokenError
			require.ErrorAs(t, err, &te)
			assert.Equal(t, classify.ProxyFailure, te.NetworkFailure(), "%v", err)
			assert.False(t, te.NetworkFailure().Permanent())
			assert.True(t, te.Temporary)
			assert.Contains(t, err.Error(), "proxyconnect")
			assert.NotEmpty(t, got.list(), "retried")
		})
	}
}

// Permanent is the Client's retry rule: only a host name that does not
// exist, an untrusted certificate and a server that does not speak TLS at
// an https URL are not retried.
func TestNetworkFailurePermanent(t *testing.T) {
	for f, want := range map[classify.NetworkFailure]bool{
		classify.NotNetwork: false, classify.NoSuchHost: true, classify.ConnectionRefused: false,
		classify.CertificateRejected: true, classify.OtherNetwork: false, classify.ProxyFailure: false, classify.NotTLS: true,
	} {
		assert.Equal(t, want, f.Permanent(), "%v", f)
	}
}

// slowAnswerSource answers 503 first, then, the Source taking no
// context, invalid_grant once the refresh deadline (deadline after the
// first call) has passed, long before the Client would abandon it.
type slowAnswerSource struct {
	calls    atomic.Int64
	first    atomic.Int64 // UnixNano of the first call
	deadline time.Duration
}

func (s *slowAnswerSource) Token() (*oauth2.Token, error) {
	if s.calls.Add(1) == 1 {
		s.first.Store(time.Now().UnixNano())
		return nil, &oauth2.RetrieveError{Response: &http.Response{StatusCode: http.StatusServiceUnavailable, Header: http.Header{}}}
	}
	// The endpoint answers 100ms after the refresh deadline.
	time.Sleep(time.Until(time.Unix(0, s.first.Load()).Add(s.deadline + 100*time.Millisecond)))
	return nil, &oauth2.RetrieveError{Response: &http.Response{StatusCode: http.StatusBadRequest, Header: http.Header{}}, ErrorCode: "invalid_grant"}
}

// An answer that comes after the refresh deadline is the error, not the
// answer before it: a permanent invalid_grant is not hidden behind the
// earlier 503.
func TestAnswerAfterTheDeadlineIsKept(t *testing.T) {
	src := &slowAnswerSource{deadline: time.Second}
	c, err := tokenmgr.New(tokenmgr.Config{Source: src, RefreshTimeout: src.deadline})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Token(context.Background())
	require.ErrorIs(t, err, tokenmgr.ErrInvalidGrant)
	assert.EqualValues(t, 2, src.calls.Load())
}

// What the endpoint says goes into the error printable: control characters
// in error and error_description (ANSI escapes that would recolour a
// terminal, a newline that would forge a log line) come out as Go escapes,
// and the 200-byte cut does not split a character.
func TestEndpointTextIsPrintable(t *testing.T) {
	desc := `\u001b[31mred\u001b[0m\nlevel=INFO msg=forged ` + strings.Repeat("é", 150)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(`{"error":"invalid_request\u0007","error_description":"` + desc + `"}`))
	}))
	defer srv.Close()
	c, err := tokenmgr.New(tokenmgr.Config{Source: tokenmgr.ClientCredentials(&clientcredentials.Config{ClientID: "id", ClientSecret: "secret", TokenURL: srv.URL, AuthStyle: oauth2.AuthStyleInHeader})})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Token(context.Background())
	var te *tokenmgr.TokenError
	require.ErrorAs(t, err, &te)
	for _, s := range []string{te.Code, te.Description, err.Error()} {
		assert.True(t, utf8.ValidString(s), "%q is not valid UTF-8", s)
		assert.NotContains(t, s, "\x1b")
		assert.NotContains(t, s, "\n")
		assert.NotContains(t, s, "\a")
	}
	assert.Equal(t, `invalid_request\a`, te.Code)
	assert.True(t, strings.HasPrefix(te.Description, `\x1b[31mred\x1b[0m\nlevel=INFO msg=forged é`), te.Description)
	assert.LessOrEqual(t, len(te.Description), 200+len("…"))
	assert.True(t, strings.HasSuffix(te.Description, "é…"), te.Description)
}

// A Source that reads a file and fails (a web identity token file that is
// not there) fails at once with the file's error: *fs.PathError has a
// Timeout method, as network errors do, but no retry mends a missing file.
func TestSourceFileErrorIsNotANetworkFailure(t *testing.T) {
	var calls atomic.Int32
	src := sourceFunc(func() (*oauth2.Token, error) {
		calls.Add(1)
		_, err := os.ReadFile(filepath.Join(t.TempDir(), "no-such-token"))
		return nil, err
	})
	c, err := tokenmgr.New(tokenmgr.Config{Source: src})
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = c.Token(ctx)
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.NotErrorIs(t, err, context.DeadlineExceeded, "retried until the deadline")
	assert.EqualValues(t, 1, calls.Load(), "retried")
	var te *tokenmgr.TokenError
	if errors.As(err, &te) {
		assert.Equal(t, classify.NotNetwork, te.NetworkFailure())
	}
}
