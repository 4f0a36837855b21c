package logintest_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/login"
	"github.com/tokenmgr/tokenmgr/login/logintest"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
)

// seeded is a store holding an earlier sign-in, which a failed login
// must leave as it is.
func seeded(t *testing.T) (store.Store, []byte) {
	t.Helper()
	st := store.NewMemory()
	b, err := (&record.Record{AccessToken: "earlier-access", RefreshToken: "earlier-refresh", Obtained: time.Now()}).Encode()
	require.NoError(t, err)
	require.NoError(t, st.Save(context.Background(), "default", b))
	return st, b
}

func unchanged(t *testing.T, st store.Store, want []byte) {
	t.Helper()
	got, err := st.Load(context.Background(), "default")
	require.NoError(t, err)
	assert.Equal(t, want, got, "the stored sign-in is untouched")
}

func redirectURI(t *testing.T, authURL string) string {
	u, err := url.Parse(authURL)
	require.NoError(t, err)
	return u.Query().Get("redirect_uri")
}

func get(t *testing.T, u string) (int, string) {
	resp, err := http.Get(u)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A redirect with a missing or wrong state is answered 400, another path
// 404, and both are ignored: the listener waits for the right one, and
// only that code is exchanged.
func TestRedirectWithoutTheStateIsIgnored(t *testing.T) {
	p := start(t, logintest.Options{})
	cfg := config(p, store.NewMemory())
	var redirect string
	cfg.OpenURL = func(ctx context.Context, authURL string) error {
		redirect = redirectURI(t, authURL)
		assert.True(t, strings.HasPrefix(redirect, "http://127.0.0.1:"), redirect)
		assert.True(t, strings.HasSuffix(redirect, "/callback"), redirect)
		code, _ := get(t, redirect+"?code=forged&state=wrong")
		assert.Equal(t, http.StatusBadRequest, code, "wrong state")
		code, _ = get(t, redirect+"?code=forged")
		assert.Equal(t, http.StatusBadRequest, code, "no state")
		code, _ = get(t, redirect+"?error=access_denied")
		assert.Equal(t, http.StatusBadRequest, code, "an error without the state ends nothing")
		code, _ = get(t, strings.TrimSuffix(redirect, "/callback")+"/other?code=forged")
		assert.Equal(t, http.StatusNotFound, code, "another path")
		return p.Browse(ctx, authURL)
	}
	_, err := login.Browser(ctxT(t), cfg)
	require.NoError(t, err)
	assert.EqualValues(t, 1, p.Requests("/oauth/token"), "only the right code was exchanged")
	// The listener closed after the one valid redirect.
	_, err = net.DialTimeout("tcp", strings.TrimPrefix(strings.TrimSuffix(redirect, "/callback"), "http://"), time.Second)
	assert.Error(t, err, "the listener is closed")
}

// The person denies: the login ends at once with the server's reason, and
// the stored sign-in stays.
func TestDeniedBrowserLogin(t *testing.T) {
	p := start(t, logintest.Options{})
	st, before := seeded(t)
	cfg := config(p, st)
	p.Deny(true)
	_, err := login.Browser(ctxT(t), cfg)
	require.ErrorIs(t, err, login.ErrDenied)
	assert.Contains(t, err.Error(), "denied")
	assert.Contains(t, err.Error(), "the user declined the sign-in", "the server's reason")
	unchanged(t, st, before)
}

// Any error in the redirect ends the login with its description, made
// printable and cut short.
func TestRedirectErrorIsPrintableAndShort(t *testing.T) {
	p := start(t, logintest.Options{})
	st, before := seeded(t)
	cfg := config(p, st)
	cfg.OpenURL = func(ctx context.Context, authURL string) error {
		u, _ := url.Parse(authURL)
		q := url.Values{"state": {u.Query().Get("state")}, "error": {"server_error"},
			"error_description": {"bad\x1b[31mthing\n" + strings.Repeat("x", 1000)}}
		code, page := get(t, redirectURI(t, authURL)+"?"+q.Encode())
		assert.Equal(t, http.StatusOK, code)
		assert.Contains(t, page, "Sign-in failed")
		return nil
	}
	_, err := login.Browser(ctxT(t), cfg)
	require.ErrorIs(t, err, login.ErrDenied)
	assert.Contains(t, err.Error(), "server_error")
	assert.NotContains(t, err.Error(), "\x1b")
	assert.NotContains(t, err.Error(), "\n")
	assert.Less(t, len(err.Error()), 400)
	unchanged(t, st, before)
}

func TestDeniedDeviceLogin(t *testing.T) {
	p := start(t, logintest.Options{})
	st, before := seeded(t)
	cfg := config(p, st)
	cfg.OnDeviceCode = func(da *oauth2.DeviceAuthResponse) { p.DenyDevice(da.UserCode) }
	_, err := login.Device(ctxT(t), cfg)
	require.ErrorIs(t, err, login.ErrDenied)
	assert.Contains(t, err.Error(), "denied")
	unchanged(t, st, before)
}

// A cancelled login returns ctx's error, closes the listener, and keeps
// what was stored.
func TestCancelledLogin(t *testing.T) {
	p := start(t, logintest.Options{})
	st, before := seeded(t)
	cfg := config(p, st)
	ctx, cancel := context.WithCancel(context.Background())
	var redirect string
	cfg.OpenURL = func(_ context.Context, authURL string) error {
		redirect = redirectURI(t, authURL)
		cancel() // the person walks away
		return nil
	}
	_, err := login.Browser(ctx, cfg)
	require.ErrorIs(t, err, context.Canceled)
	unchanged(t, st, before)
	_, err = net.DialTimeout("tcp", strings.TrimPrefix(strings.TrimSuffix(redirect, "/callback"), "http://"), time.Second)
	assert.Error(t, err, "the listener is closed")

	ctx, cancel = context.WithCancel(context.Background())
	cfg.OnDeviceCode = func(*oauth2.DeviceAuthResponse) { cancel() }
	_, err = login.Device(ctx, cfg)
	require.ErrorIs(t, err, context.Canceled)
	unchanged(t, st, before)
}

// OpenURL failing: the URL is printed and the login keeps listening.
func TestOpenURLFailsPrintsTheURL(t *testing.T) {
	p := start(t, logintest.Options{})
	cfg := config(p, store.NewMemory())
	out := &prompt{}
	cfg.Prompt = out
	cfg.OpenURL = func(ctx context.Context, authURL string) error {
		go func() {
			// The person reads the URL from the terminal and opens it.
			for !strings.Contains(out.String(), authURL) {
				time.Sleep(time.Millisecond)
			}
			p.Browse(ctx, authURL)
		}()
		return errors.New("no display")
	}
	_, err := login.Browser(ctxT(t), cfg)
	require.NoError(t, err)
	assert.Contains(t, out.String(), "no display")
}

// The listener binds loopback only.
func TestListenAddrMustBeLoopback(t *testing.T) {
	p := start(t, logintest.Options{})
	for _, addr := range []string{"0.0.0.0:0", ":0", "localhost:0", "192.0.2.1:0"} {
		cfg := config(p, nil)
		cfg.ListenAddr = addr
		cfg.OpenURL = func(context.Context, string) error { t.Error("opened a browser"); return nil }
		_, err := login.Browser(ctxT(t), cfg)
		require.ErrorIs(t, err, login.ErrNotLoopback, addr)
	}
}

// rewriteIDToken changes the ID token of every token response.
func rewriteIDToken(t *testing.T, p **logintest.Provider, change func(claims map[string]any) (stranger bool)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/oauth/token" {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			var body map[string]any
			if json.Unmarshal(rec.Body.Bytes(), &body) == nil {
				if raw, ok := body["id_token"].(string); ok {
					parts := strings.Split(raw, ".")
					payload, err := base64.RawURLEncoding.DecodeString(parts[1])
					require.NoError(t, err)
					var claims map[string]any
					require.NoError(t, json.Unmarshal(payload, &claims))
					stranger := change(claims)
					b, _ := json.Marshal(claims)
					body["id_token"], err = (*p).Sign(b, stranger)
					require.NoError(t, err)
				}
			}
			b, _ := json.Marshal(body)
			for k, v := range rec.Header() {
				w.Header()[k] = v
			}
			w.Header().Del("Content-Length")
			w.WriteHeader(rec.Code)
			w.Write(b)
		})
	}
}

// An ID token with a bad signature, another issuer or audience, a wrong
// nonce or expired: an error, nothing saved.
func TestBadIDTokenIsRefused(t *testing.T) {
	for name, change := range map[string]func(map[string]any) bool{
		"bad signature":  func(map[string]any) bool { return true },
		"another issuer": func(c map[string]any) bool { c["iss"] = "https://evil.example.com"; return false },
		"another audience": func(c map[string]any) bool {
			c["aud"] = []string{"someone-else"}
			return false
		},
		"wrong nonce": func(c map[string]any) bool { c["nonce"] = "not-the-one"; return false },
		"expired": func(c map[string]any) bool {
			c["exp"] = time.Now().Add(-time.Hour).Unix()
			c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
			return false
		},
	} {
		t.Run(name, func(t *testing.T) {
			var p *logintest.Provider
			p = start(t, logintest.Options{Middleware: rewriteIDToken(t, &p, change)})
			st, before := seeded(t)
			_, err := login.Browser(ctxT(t), config(p, st))
			require.ErrorIs(t, err, login.ErrIDToken)
			unchanged(t, st, before)
			if name != "wrong nonce" {
				_, err = login.Device(ctxT(t), config(p, st))
				require.ErrorIs(t, err, login.ErrIDToken, "device")
				unchanged(t, st, before)
			}
		})
	}
}

// A discovery document naming another issuer, or a plain-http issuer that
// is not loopback: an error before anything is opened.
func TestDiscoveryChecks(t *testing.T) {
	p := start(t, logintest.Options{Middleware: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/.well-known/openid-configuration" {
				next.ServeHTTP(w, r)
				return
			}
			rec := httptest.NewRecorder()
			next.ServeHTTP(rec, r)
			w.Write(bytes.Replace(rec.Body.Bytes(), []byte(`"issuer":"http://127.0.0.1`), []byte(`"issuer":"http://localhost`), 1))
		})
	}})
	st, before := seeded(t)
	cfg := config(p, st)
	cfg.OpenURL = func(context.Context, string) error { t.Error("opened a browser"); return nil }
	_, err := login.Browser(ctxT(t), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "names issuer")
	_, err = login.Device(ctxT(t), cfg)
	require.Error(t, err)
	unchanged(t, st, before)

	cfg.Issuer = "http://id.example.com"
	_, err = login.Browser(ctxT(t), cfg)
	require.ErrorIs(t, err, login.ErrNotLoopback)
	cfg.Issuer = "http://id.example.com"
	_, err = login.NewClient(ctxT(t), cfg)
	require.ErrorIs(t, err, login.ErrNotLoopback)
	unchanged(t, st, before)
}

// The redirect URI is http://127.0.0.1:<port>/callback, the port the one
// ListenAddr names.
func TestListenAddrPort(t *testing.T) {
	p := start(t, logintest.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	cfg := config(p, store.NewMemory())
	cfg.ListenAddr = addr
	cfg.OpenURL = func(ctx context.Context, authURL string) error {
		assert.Equal(t, "http://"+addr+"/callback", redirectURI(t, authURL))
		return p.Browse(ctx, authURL)
	}
	_, err = login.Browser(ctxT(t), cfg)
	require.NoError(t, err)
}

// issWriter appends iss to the redirect to the sign-in's callback, as an
// issuer that implements RFC 9207 does.
type issWriter struct {
	http.ResponseWriter
	iss string
}

func (w issWriter) WriteHeader(status int) {
	if loc := w.Header().Get("Location"); w.iss != "" && strings.Contains(loc, "/callback?") {
		w.Header().Set("Location", loc+"&iss="+url.QueryEscape(w.iss))
	}
	w.ResponseWriter.WriteHeader(status)
}

// RFC 9207 §2.4: when the issuer's metadata says it puts iss in every
// authorization response, a redirect without one did not come from it (a
// mix-up attack: another server's code) and ends the sign-in, the stored
// one untouched; with the issuer's iss it signs in.
func TestIssuerThatSendsIssMustSendIt(t *testing.T) {
	var iss atomic.Value
	iss.Store("")
	p := start(t, logintest.Options{Middleware: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/.well-known/openid-configuration" {
				rec := httptest.NewRecorder()
				next.ServeHTTP(rec, r)
				w.Header().Set("Content-Type", "application/json")
				w.Write(bytes.Replace(rec.Body.Bytes(), []byte(`{`), []byte(`{"authorization_response_iss_parameter_supported":true,`), 1))
				return
			}
			next.ServeHTTP(issWriter{w, iss.Load().(string)}, r)
		})
	}})
	st, before := seeded(t)
	cfg := config(p, st)
	_, err := login.Browser(ctxT(t), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "names no issuer")
	assert.Zero(t, p.Requests("/oauth/token"), "the code was not exchanged")
	unchanged(t, st, before)

	iss.Store(p.Issuer)
	tok, err := login.Browser(ctxT(t), cfg)
	require.NoError(t, err)
	assert.NotEmpty(t, tok.AccessToken)
}

// lockSpy says when the sign-in asks for the store's lock.
type lockSpy struct {
	store.Store
	locking chan struct{}
}

func (s lockSpy) Lock(ctx context.Context, key string) (func(), error) {
	s.locking <- struct{}{}
	return s.Store.(store.Locker).Lock(ctx, key)
}

// A sign-in saves under the store's lock, as a Client's refresh does:
// while another process holds it (refreshing the old sign-in, whose save
// would otherwise land over this one), the sign-in waits, then saves.
// Before, it saved without asking.
func TestSignInSavesUnderTheStoreLock(t *testing.T) {
	p := start(t, logintest.Options{})
	mem := store.NewMemory()
	unlock, err := mem.(store.Locker).Lock(ctxT(t), "default") // the refreshing process
	require.NoError(t, err)
	spy := lockSpy{mem, make(chan struct{}, 1)}
	done := make(chan error, 1)
	go func() {
		_, err := login.Browser(ctxT(t), config(p, spy))
		done <- err
	}()
	select {
	case <-spy.locking:
	case err := <-done:
		unlock()
		t.Fatalf("signed in without asking for the store's lock (err %v)", err)
	}
	r, err := record.Load(context.Background(), mem, "default")
	require.NoError(t, err)
	assert.Nil(t, r, "nothing saved while the lock is held")
	unlock()
	require.NoError(t, <-done)
	r, err = record.Load(context.Background(), mem, "default")
	require.NoError(t, err)
	require.NotNil(t, r)
	assert.NotEmpty(t, r.RefreshToken)
}
