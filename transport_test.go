package tokenmgr

// The Client's transport: attaching the token, one refresh and replay when
// the API rejects it, damping, redirects and the host policy.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/damp"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

func TestTransportAttachesTokenWithoutTouchingRequest(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv))})
	req, _ := http.NewRequest("GET", srv.URL+"/v1/things", nil)
	req.Header.Set("X-Mine", "1")
	resp, err := c.HTTPClient().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	assert.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Empty(t, req.Header.Get("Authorization"), "the caller's request is not modified")
	assert.Equal(t, "1", req.Header.Get("X-Mine"))
}

func TestTransportReplaysOnceAfterInvalidToken(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv))})
	hc := c.HTTPClient()
	resp, err := hc.Get(srv.URL + "/a")
	require.NoError(t, err)
	resp.Body.Close()
	tok, _ := c.Token(context.Background())
	srv.Revoke(tok.AccessToken)

	// A POST with a rewindable body is replayed with the same body.
	var bodies []string
	var mu sync.Mutex
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" {
			return false
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		bodies = append(bodies, string(b))
		mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(b))
		return false
	})
	resp, err = hc.Post(srv.URL+"/b", "text/plain", strings.NewReader("payload"))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	assert.Equal(t, []string{"payload", "payload"}, bodies)
	assert.EqualValues(t, 2, srv.TokenRequests.Load())
	assert.EqualValues(t, 1, c.Stats().Replays)
	assert.EqualValues(t, 2, srv.Rejected.Load()+1, "one rejection, then success")
}

func TestTransportSecondRejectionGoesToCaller(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" {
			return false
		}
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, tokenmgrtest.AWSInvalidClientTokenId)
		return true
	})
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv))})
	resp, err := c.HTTPClient().Get(srv.URL + "/x")
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Equal(t, tokenmgrtest.AWSInvalidClientTokenId, string(b), "body intact")
	assert.EqualValues(t, 2, srv.APIRequests.Load(), "sent twice, no loop")
	assert.EqualValues(t, 2, srv.TokenRequests.Load())
}

func TestTransportNeverResendsUnrewindableBody(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv))})
	tok, err := c.Token(context.Background())
	require.NoError(t, err)
	srv.Revoke(tok.AccessToken)
	req, _ := http.NewRequest("POST", srv.URL+"/upload", io.NopCloser(strings.NewReader("once")))
	req.GetBody = nil
	resp, err := c.HTTPClient().Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "first answer returned")
	assert.EqualValues(t, 1, srv.APIRequests.Load(), "never sent twice")
	// The next request gets a new token.
	resp, err = c.HTTPClient().Get(srv.URL + "/next")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestTransportConcurrentRejectionsOneRefresh(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv))})
	tok, err := c.Token(context.Background())
	require.NoError(t, err)
	srv.Revoke(tok.AccessToken)

	// Hold every API request until all 100 have arrived, so they all carry
	// the revoked token.
	const n = 100
	var arrived atomic.Int64
	all := make(chan struct{})
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/token" && r.Header.Get("Authorization") == "Bearer "+tok.AccessToken {
			if arrived.Add(1) == n {
				close(all)
			}
			<-all
		}
		return false
	})
	// The subject is one refresh, not a stalled body: with 100 answers
	// arriving at once on a loaded machine, a body's reader may not run
	// within classify.BodyWait, and the rejection would go back unreplayed.
	c.send.classify.Wait = time.Minute
	hc := c.HTTPClient()
	hc.Transport.(*transport[*oauth2.Token]).base = &http.Transport{MaxIdleConnsPerHost: n}
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := hc.Get(srv.URL + "/p")
			if assert.NoError(t, err) {
				assert.Equal(t, http.StatusOK, resp.StatusCode)
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	assert.EqualValues(t, 2, srv.TokenRequests.Load(), "100 rejections of one token, one refresh")
	assert.EqualValues(t, n, c.Stats().Replays)
}

func TestTransportDoesNotRetryOtherErrors(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		header http.Header
		body   string
	}{
		{"insufficient_scope", 403, http.Header{"Www-Authenticate": {`Bearer error="insufficient_scope", scope="a"`}}, ""},
		{"claims challenge", 401, http.Header{"Www-Authenticate": {`Bearer realm="", error="invalid_token", claims="eyJ9"`}}, ""},
		{"access denied", 403, http.Header{"Content-Type": {"text/xml"}}, "<Error><Code>AccessDenied</Code></Error>"},
		{"plain 403", 403, nil, "forbidden"},
		{"5xx", 503, nil, ""},
		{"clock skew", 403, nil, "<ErrorResponse><Error><Code>RequestExpired</Code></Error></ErrorResponse>"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
			defer srv.Close()
			srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path == "/token" {
					return false
				}
				for k, v := range tc.header {
					w.Header()[k] = v
				}
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
				return true
			})
			c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv))})
			resp, err := c.HTTPClient().Get(srv.URL + "/x")
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Equal(t, tc.body, string(b))
			assert.EqualValues(t, 1, srv.APIRequests.Load())
			assert.EqualValues(t, 1, srv.TokenRequests.Load())
		})
	}
}

func TestTransportRedirectToOtherHostGetsNoToken(t *testing.T) {
	var otherAuth, sameAuth atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherAuth.Store(r.Header.Get("Authorization"))
	}))
	defer other.Close()
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		switch r.URL.Path {
		case "/away":
			http.Redirect(w, r, other.URL+"/landing", http.StatusFound)
			return true
		case "/here":
			http.Redirect(w, r, "/landing", http.StatusFound)
			return true
		case "/landing":
			sameAuth.Store(r.Header.Get("Authorization"))
		}
		return false
	})
	// Both servers are on 127.0.0.1; they differ by port, which is part of
	// the origin.
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv))})
	hc := c.HTTPClient()
	resp, err := hc.Get(srv.URL + "/away")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "", otherAuth.Load(), "no token for another host")
	resp, err = hc.Get(srv.URL + "/here")
	require.NoError(t, err)
	resp.Body.Close()
	assert.True(t, strings.HasPrefix(sameAuth.Load().(string), "Bearer "), "same host keeps the token")
}

// TestTransportRedirectWithBrokenChainGetsNoToken: a base transport (or
// middleware) that leaves Response.Request unset breaks the chain back to
// the user's request; a redirect hop whose origin cannot be established
// gets no token (issue 10 item 3: the walk stopped at the hop itself and
// judged it same-origin).
func TestTransportRedirectWithBrokenChainGetsNoToken(t *testing.T) {
	var otherAuth atomic.Value
	otherAuth.Store("")
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		otherAuth.Store(r.Header.Get("Authorization"))
	}))
	defer other.Close()
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/away" {
			http.Redirect(w, r, other.URL+"/landing", http.StatusFound)
			return true
		}
		return false
	})
	forgetful := rtFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := http.DefaultTransport.RoundTrip(r)
		if resp != nil {
			resp.Request = nil // as some middleware does
		}
		return resp, err
	})
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv))})
	resp, err := (&http.Client{Transport: c.Transport(forgetful)}).Get(srv.URL + "/away")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, "", otherAuth.Load(), "no token for a hop of unknown origin")
}

// TestTransportRedirectToPlainHTTPSameHostGetsNoToken: the origin includes
// the scheme: an https to http hop on the same host and port carries no
// token, even with AllowInsecureHTTP (issue 10 item 3).
func TestTransportRedirectToPlainHTTPSameHostGetsNoToken(t *testing.T) {
	var plainAuth []string
	base := rtFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Scheme == "https" {
			h := http.Header{"Location": {"http://api.example.com:8443/landing"}}
			return &http.Response{StatusCode: http.StatusFound, Header: h, Body: http.NoBody, Request: r}, nil
		}
		plainAuth = append(plainAuth, r.Header.Get("Authorization"))
		return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	})
	c := newTestClient(t, Config{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tls-only-token"}), AllowInsecureHTTP: true})
	resp, err := (&http.Client{Transport: c.Transport(base)}).Get("https://api.example.com:8443/start")
	require.NoError(t, err)
	resp.Body.Close()
	require.Len(t, plainAuth, 1, "the redirect was followed")
	assert.Empty(t, plainAuth[0], "no token over http after an https request")
}

type recordingRT struct {
	reqs []*http.Request
}

func (r *recordingRT) RoundTrip(req *http.Request) (*http.Response, error) {
	r.reqs = append(r.reqs, req)
	return &http.Response{StatusCode: 200, Body: http.NoBody, Request: req}, nil
}

type trackedBody struct {
	io.Reader
	closed bool
}

func (b *trackedBody) Close() error { b.closed = true; return nil }

func TestTransportHostPolicy(t *testing.T) {
	static := oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "static-token-value"})
	for _, tc := range []struct {
		name    string
		cfg     Config
		url     string
		wantErr error
	}{
		{"plain http to a remote host", Config{}, "http://api.example.com/x", ErrInsecureHTTP},
		{"plain http to loopback", Config{}, "http://127.0.0.1:8080/x", nil},
		{"plain http to localhost", Config{}, "http://localhost/x", nil},
		{"plain http allowed", Config{AllowInsecureHTTP: true}, "http://api.example.com/x", nil},
		{"allowed host", Config{AllowedHosts: []string{"api.example.com"}}, "https://API.example.com/x", nil},
		{"wildcard", Config{AllowedHosts: []string{"*.example.com"}}, "https://eu.api.example.com/x", nil},
		{"wildcard is not the apex", Config{AllowedHosts: []string{"*.example.com"}}, "https://example.com/x", ErrHostNotAllowed},
		{"not allowed", Config{AllowedHosts: []string{"api.example.com"}}, "https://evil.example.net/x", ErrHostNotAllowed},
		{"suffix trick", Config{AllowedHosts: []string{"*.example.com"}}, "https://evilexample.com/x", ErrHostNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Source = static
			c := newTestClient(t, cfg)
			rec := &recordingRT{}
			body := &trackedBody{Reader: strings.NewReader("b")}
			req, _ := http.NewRequest("POST", tc.url, body)
			resp, err := c.Transport(rec).RoundTrip(req)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
				assert.Nil(t, resp)
				assert.Empty(t, rec.reqs, "nothing sent")
				assert.True(t, body.closed, "body closed on early error")
				assert.NotContains(t, err.Error(), "static-token-value")
				return
			}
			require.NoError(t, err)
			require.Len(t, rec.reqs, 1)
			assert.Equal(t, "Bearer static-token-value", rec.reqs[0].Header.Get("Authorization"))
		})
	}
	_, err := New(Config{Source: static, AllowedHosts: []string{"https://x.com"}})
	require.Error(t, err)
}

func TestTransportEarlyErrorClosesBody(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	cfg := ccConfig(srv)
	cfg.ClientSecret = "nope"
	c := newTestClient(t, Config{Source: ClientCredentials(cfg)})
	body := &trackedBody{Reader: strings.NewReader("b")}
	req, _ := http.NewRequest("POST", srv.URL+"/x", body)
	_, err := c.Transport(&recordingRT{}).RoundTrip(req)
	require.ErrorIs(t, err, ErrInvalidClient)
	assert.True(t, body.closed)
}

func TestCustomAttach(t *testing.T) {
	c := newTestClient(t, Config{
		Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "k"}),
		Attach: func(r *http.Request, tok *oauth2.Token) error {
			if r.URL.Path == "/fail" {
				return errors.New("signer failed")
			}
			r.Header.Set("X-Api-Key", tok.AccessToken)
			return nil
		},
	})
	rec := &recordingRT{}
	req, _ := http.NewRequest("GET", "https://api.example.com/ok", nil)
	_, err := c.Transport(rec).RoundTrip(req)
	require.NoError(t, err)
	assert.Equal(t, "k", rec.reqs[0].Header.Get("X-Api-Key"))
	assert.Empty(t, rec.reqs[0].Header.Get("Authorization"))
	req, _ = http.NewRequest("GET", "https://api.example.com/fail", nil)
	_, err = c.Transport(rec).RoundTrip(req)
	require.ErrorContains(t, err, "signer failed")
}

// TestCustomAttachPanicBecomesError: a panicking Config.Attach is an error
// from RoundTrip, without the token in it, and the transport goes on
// working (issue 10 item 1).
func TestCustomAttachPanicBecomesError(t *testing.T) {
	const tok = "attach-secret-token-123"
	c := newTestClient(t, Config{
		Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok}),
		Attach: func(r *http.Request, t *oauth2.Token) error {
			if r.URL.Path == "/panic" {
				panic("cannot sign with " + t.AccessToken)
			}
			r.Header.Set("X-Api-Key", t.AccessToken)
			return nil
		},
	})
	rec := &recordingRT{}
	req, _ := http.NewRequest("POST", "https://api.example.com/panic", strings.NewReader("x"))
	_, err := c.Transport(rec).RoundTrip(req)
	var pe *PanicError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "Attach", pe.Where)
	assert.NotContains(t, err.Error(), tok)
	assert.Empty(t, rec.reqs, "nothing sent")
	req, _ = http.NewRequest("GET", "https://api.example.com/ok", nil)
	_, err = c.Transport(rec).RoundTrip(req)
	require.NoError(t, err)
	assert.Equal(t, tok, rec.reqs[0].Header.Get("X-Api-Key"))
}

func TestUnrewindableRejectionWithStoreNextRequestGetsNewToken(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), Store: store.NewMemory()})
	t1, err := c.Token(context.Background())
	require.NoError(t, err)
	srv.Revoke(t1.AccessToken)
	hc := c.HTTPClient()
	req, _ := http.NewRequest("POST", srv.URL+"/api", io.NopCloser(strings.NewReader("x")))
	req.GetBody = nil
	resp, err := hc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	resp, err = hc.Get(srv.URL + "/api")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.EqualValues(t, 1, srv.Rejected.Load())
}

func TestAlwaysRejectingAPIIsDamped(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/api" {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="wrong audience"`)
			w.WriteHeader(http.StatusUnauthorized)
			return true
		}
		return false
	})
	synctest.Test(t, func(t *testing.T) {
		c := newBubbleClient(t, srv, Config{Source: ClientCredentials(ccConfig(srv))})
		hc := &http.Client{Transport: c.Transport(srv.InMemoryTransport())}
		call := func() {
			resp, err := hc.Get(srv.URL + "/api")
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		}
		for range 20 {
			call()
		}
		assert.EqualValues(t, 2, srv.TokenRequests.Load(), "one replay, then damped")
		time.Sleep(1500 * time.Millisecond) // past the first backoff: one more try
		for range 20 {
			call()
		}
		assert.EqualValues(t, 3, srv.TokenRequests.Load())
		assert.EqualValues(t, 2, c.Stats().Replays)
	})
}

// TestTransportStalledErrorBodyDoesNotHold: a server that sends the
// headers of a 401 or 403 and stalls before the body does not hold
// RoundTrip for as long as it stalls (issue 10 item 9: classification
// waited for 64 KiB or EOF). The verdict comes from what arrived within
// classify.BodyWait, and the caller still reads the whole, intact body.
func TestTransportStalledErrorBodyDoesNotHold(t *testing.T) {
	for _, tc := range []struct {
		name, head, tail string
		status, want     int
	}{
		// A 403 whose code has not arrived: access denied, passed on; the
		// caller reads the body as it comes.
		{name: "403 passed on", status: http.StatusForbidden, head: `{"code":`, tail: `"Nope"}`, want: http.StatusForbidden},
		// A bare 401: the token is replaced and the request replayed
		// without waiting for the stalled body.
		{name: "401 replayed", status: http.StatusUnauthorized, head: `{"message":`, tail: `"later"}`, want: http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			release := make(chan struct{})
			var calls atomic.Int64
			api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) > 1 {
					return // the replay: 200
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.head)
				w.(http.Flusher).Flush()
				<-release
				io.WriteString(w, tc.tail)
			}))
			defer api.Close()
			var once sync.Once
			unstall := func() { once.Do(func() { close(release) }) }
			defer unstall()
			srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
			defer srv.Close()
			c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv))})
			type result struct {
				resp *http.Response
				err  error
			}
			done := make(chan result, 1)
			go func() {
				resp, err := c.HTTPClient().Get(api.URL + "/x")
				done <- result{resp, err}
			}()
			var r result
			select {
			case r = <-done:
			case <-time.After(10 * time.Second): // classify.BodyWait is 1s
				unstall()
				require.FailNow(t, "RoundTrip held while the server stalled")
			}
			require.NoError(t, r.err)
			defer r.resp.Body.Close()
			assert.Equal(t, tc.want, r.resp.StatusCode)
			unstall()
			b, err := io.ReadAll(r.resp.Body)
			require.NoError(t, err)
			if tc.want == tc.status {
				assert.Equal(t, tc.head+tc.tail, string(b), "the body reaches the caller intact")
			}
		})
	}
}

// rejectEverything answers every request 401 invalid_token, as an API of
// another audience does.
func rejectEverything(w http.ResponseWriter) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="wrong audience"`)
	w.WriteHeader(http.StatusUnauthorized)
}

// TestTransportUnrewindableRejectionsAreDamped: requests whose body cannot
// be rewound, to a server that rejects every token, are damped like
// replays: 50 requests cost 2 token fetches, not 50 (issue 10 item 7).
func TestTransportUnrewindableRejectionsAreDamped(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/upload" {
			rejectEverything(w)
			return true
		}
		return false
	})
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv))})
	hc := c.HTTPClient()
	for range 50 {
		req, _ := http.NewRequest("POST", srv.URL+"/upload", io.NopCloser(strings.NewReader("once")))
		req.GetBody = nil
		resp, err := hc.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
	assert.EqualValues(t, 2, srv.TokenRequests.Load(), "the first token, one replacement, then damped")
	assert.EqualValues(t, 50, srv.APIRequests.Load(), "each request sent once")
}

// TestTransportDampingIsPerHost: a host that rejects every token (a wrong
// audience) is damped on its own: a revoked token on a healthy host is
// still replaced at once (issue 10 item 8: damping was client-wide), and
// the hosts tracked are bounded.
func TestTransportDampingIsPerHost(t *testing.T) {
	wrong := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { rejectEverything(w) }))
	defer wrong.Close()
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv))})
	hc := c.HTTPClient()
	get := func(url string) int {
		resp, err := hc.Get(url)
		require.NoError(t, err)
		resp.Body.Close()
		return resp.StatusCode
	}
	for range 5 {
		require.Equal(t, http.StatusUnauthorized, get(wrong.URL+"/x"))
	}
	require.EqualValues(t, 2, srv.TokenRequests.Load(), "the wrong-audience host is damped")
	tok, err := c.Token(context.Background())
	require.NoError(t, err)
	srv.Revoke(tok.AccessToken)
	assert.Equal(t, http.StatusOK, get(srv.URL+"/api"), "the healthy host's revoked token is replaced at once")
	assert.EqualValues(t, 3, srv.TokenRequests.Load())

	// A thousand hosts that reject every token: the damper stays bounded.
	var n atomic.Int64
	src := oauth2.TokenSource(tokenFunc(func() (*oauth2.Token, error) {
		return &oauth2.Token{AccessToken: fmt.Sprintf("tok-%d", n.Add(1))}, nil
	}))
	c2 := newTestClient(t, Config{Source: src})
	rt := c2.Transport(rtFunc(func(r *http.Request) (*http.Response, error) {
		h := http.Header{"Www-Authenticate": {`Bearer error="invalid_token"`}}
		return &http.Response{StatusCode: http.StatusUnauthorized, Header: h, Body: http.NoBody, Request: r}, nil
	}))
	for i := range 1000 {
		req, _ := http.NewRequest("GET", fmt.Sprintf("https://h%d.example.com/", i), nil)
		resp, err := rt.RoundTrip(req)
		require.NoError(t, err)
		resp.Body.Close()
	}
	assert.LessOrEqual(t, c2.send.damp.Len(), damp.MaxHosts)
}

// TestTransportLateRejectionDoesNotDamp: the rejection of an older token
// that was in flight when a newer one was accepted says nothing about the
// newer one: a rejection of that newer token is refreshed and replayed, not
// damped (found by TestStressFailureModes: revoked tokens on a healthy API
// were passed on as 403).
func TestTransportLateRejectionDoesNotDamp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newTestClient(t, Config{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "unused"})})
		a := &entry[*oauth2.Token]{tok: &oauth2.Token{AccessToken: "token-a"}, id: "token-a", obtained: time.Now()}
		time.Sleep(time.Second)
		b := &entry[*oauth2.Token]{tok: &oauth2.Token{AccessToken: "token-b"}, id: "token-b", obtained: time.Now()}
		const host = "api.example.com:443"
		damp, _ := c.send.rejected(c, host, a)
		require.False(t, damp, "a first rejection is replayed")
		c.send.damp.Accepted(&url.URL{Scheme: "https", Host: "api.example.com"}) // b was accepted
		time.Sleep(time.Second)
		damp, _ = c.send.rejected(c, host, a) // a request with a, in flight all along
		require.False(t, damp)
		time.Sleep(time.Second)
		damp, _ = c.send.rejected(c, host, b) // b is revoked
		assert.False(t, damp, "b was obtained before a's late rejection: not evidence that the host rejects every token")
		time.Sleep(time.Second)
		c2 := &entry[*oauth2.Token]{tok: &oauth2.Token{AccessToken: "token-c"}, id: "token-c", obtained: time.Now()}
		damp, _ = c.send.rejected(c, host, c2)
		assert.True(t, damp, "a token fetched after b's rejection, rejected too: damped")
	})
}

type tokenFunc func() (*oauth2.Token, error)

func (f tokenFunc) Token() (*oauth2.Token, error) { return f() }

func TestNilBodyRejectionDoesNotPanic(t *testing.T) {
	c := newTestClient(t, Config{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "k"})})
	n := 0
	hc := &http.Client{Transport: c.Transport(rtFunc(func(r *http.Request) (*http.Response, error) {
		n++
		if n == 1 {
			return &http.Response{StatusCode: 401, Header: http.Header{}, Request: r}, nil
		}
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, Request: r}, nil
	}))}
	resp, err := hc.Get("https://api.example.com/x")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 401, resp.StatusCode, "a static token cannot be replaced: the answer is passed on")
}

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestCustomAttachInQueryLeavesCallerURLAlone: an Attach that puts the
// token in the URL's query (RFC 6750 §2.3's access_token) changes the
// transport's copy of the request, not the caller's: the caller's URL, and
// so the *url.Error http.Client builds from it when the API cannot be
// reached, never holds the token.
func TestCustomAttachInQueryLeavesCallerURLAlone(t *testing.T) {
	const tok = "query-secret-token-456"
	c := newTestClient(t, Config{
		Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok}),
		Attach: func(r *http.Request, t *oauth2.Token) error {
			q := r.URL.Query()
			q.Set("access_token", t.AccessToken)
			r.URL.RawQuery = q.Encode()
			return nil
		},
	})
	var seenElsewhere []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenElsewhere = append(seenElsewhere, fmt.Sprintf("%s %v", r.URL, r.Header))
	}))
	defer other.Close()
	var got []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Query().Get("access_token"))
		if r.URL.Path == "/away" {
			http.Redirect(w, r, other.URL+"/landing", http.StatusFound)
		}
	}))
	defer api.Close()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: c.Transport(tr)}

	req, err := http.NewRequest("GET", api.URL+"/x?page=2", nil)
	require.NoError(t, err)
	resp, err := hc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, []string{tok}, got, "the API got the token")
	assert.Equal(t, "page=2", req.URL.RawQuery, "the caller's URL is not modified")

	// A redirect to another origin: http.Client's Referer quotes the
	// caller's URL, which must not hold the token.
	resp, err = hc.Get(api.URL + "/away")
	require.NoError(t, err)
	resp.Body.Close()
	require.Len(t, seenElsewhere, 1)
	assert.NotContains(t, seenElsewhere[0], tok, "the other origin saw the token")

	// Nothing listens any more: the error names the caller's URL.
	api.Close()
	req, err = http.NewRequest("GET", api.URL+"/y", nil)
	require.NoError(t, err)
	_, err = hc.Do(req)
	require.Error(t, err)
	assert.NotContains(t, err.Error(), tok)
	assert.Empty(t, req.URL.RawQuery)
}

// An Attach that adds a header value (Header.Add) leaves the caller's
// header slice alone, spare capacity included: two requests sharing one
// slice with room to grow must not have the token written into it.
func TestCustomAttachAddingAHeaderValueLeavesCallersSliceAlone(t *testing.T) {
	const tok = "header-secret-token-789"
	c := newTestClient(t, Config{
		Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: tok}),
		Attach: func(r *http.Request, t *oauth2.Token) error {
			r.Header.Add("X-Auth", "Bearer "+t.AccessToken)
			return nil
		},
	})
	var got [][]string
	hc := &http.Client{Transport: c.Transport(rtFunc(func(r *http.Request) (*http.Response, error) {
		got = append(got, r.Header.Values("X-Auth"))
		return &http.Response{StatusCode: 200, Body: http.NoBody, Request: r}, nil
	}))}
	shared := make([]string, 1, 4) // room to grow in place
	shared[0] = "caller-value"
	req, err := http.NewRequest("GET", "https://api.example.com/x", nil)
	require.NoError(t, err)
	req.Header["X-Auth"] = shared
	resp, err := hc.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, [][]string{{"caller-value", "Bearer " + tok}}, got, "the API got both values")
	assert.Equal(t, []string{"caller-value"}, req.Header["X-Auth"])
	assert.Empty(t, shared[:cap(shared)][1], "the token was written into the caller's array")
}

// TestTransportManyRejectingHostsBoundTokenRequests: however many hosts
// reject every token, the token requests their rejections cost per window
// are bounded (issue 18 item 17: each newly seen host cost one and swapped
// out the token the others used, and past maxDampedHosts the eviction
// forgot damped hosts, so about a quarter of the requests refetched).
func TestTransportManyRejectingHostsBoundTokenRequests(t *testing.T) {
	const hosts, rounds = 1000, 10 // a request every 3 ms for 30 s
	synctest.Test(t, func(t *testing.T) {
		var fetched atomic.Int64
		src := oauth2.TokenSource(tokenFunc(func() (*oauth2.Token, error) {
			return &oauth2.Token{AccessToken: fmt.Sprintf("tok-%d", fetched.Add(1))}, nil
		}))
		c := newTestClient(t, Config{Source: src})
		rt := c.Transport(rtFunc(func(r *http.Request) (*http.Response, error) {
			time.Sleep(3 * time.Millisecond)
			h := http.Header{"Www-Authenticate": {`Bearer error="invalid_token"`}}
			return &http.Response{StatusCode: http.StatusUnauthorized, Header: h, Body: http.NoBody, Request: r}, nil
		}))
		for range rounds {
			for i := range hosts {
				req, _ := http.NewRequest("GET", fmt.Sprintf("https://h%d.example.com/", i), nil)
				resp, err := rt.RoundTrip(req)
				require.NoError(t, err)
				resp.Body.Close()
			}
		}
		t.Logf("%d hosts x %d rounds: %d token requests", hosts, rounds, fetched.Load())
		// The first token, one replacement, then one per Client-wide
		// cooldown (1s, 2s, 4s, 8s, 16s): 7 (10001 before).
		assert.LessOrEqual(t, fetched.Load(), int64(8))
	})
}

// TestTransportRepeatedRevocationsReplacedAtOnce: the bound on
// replacements rejected in turn (TestTransportManyRejectingHostsBound
// TokenRequests) does not hold off a healthy host whose tokens are revoked
// one after another: each is replaced and the request replayed at once.
func TestTransportRepeatedRevocationsReplacedAtOnce(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	synctest.Test(t, func(t *testing.T) {
		c := newBubbleClient(t, srv, Config{Source: ClientCredentials(ccConfig(srv))})
		hc := &http.Client{Transport: c.Transport(srv.InMemoryTransport())}
		for i := range 5 {
			tok, err := c.Token(context.Background())
			require.NoError(t, err)
			srv.Revoke(tok.AccessToken)
			resp, err := hc.Get(srv.URL + "/api")
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode, "revocation %d", i+1)
		}
		assert.EqualValues(t, 6, srv.TokenRequests.Load())
		assert.EqualValues(t, 5, c.Stats().Replays)
	})
}
