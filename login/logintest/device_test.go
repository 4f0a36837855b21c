package logintest_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/login"
	"github.com/tokenmgr/tokenmgr/login/logintest"
	"github.com/tokenmgr/tokenmgr/store"
)

// pollLog notes when each device poll reached the provider.
type pollLog struct {
	mu    sync.Mutex
	at    []time.Time
	code  string
	p     *logintest.Provider
	onNth func(n int) error
}

func (l *pollLog) poll(n int) error {
	l.mu.Lock()
	l.at = append(l.at, time.Now())
	code := l.code
	l.mu.Unlock()
	if l.onNth != nil {
		if err := l.onNth(n); err != nil {
			return err
		}
	}
	if n == 2 {
		l.p.ApproveDevice(code)
	}
	return nil
}

// A confidential client's device polls go once per interval: the auth
// style is set, not detected (x/oauth2's detection would send each
// pending poll twice).
func TestDevicePollsOncePerInterval(t *testing.T) {
	log := &pollLog{}
	p := start(t, logintest.Options{OnDevicePoll: log.poll})
	log.p = p
	cfg := config(p, store.NewMemory())
	cfg.ClientID, cfg.ClientSecret = p.ConfidentialClientID, p.ClientSecret
	var shown time.Time
	cfg.OnDeviceCode = func(da *oauth2.DeviceAuthResponse) {
		log.mu.Lock()
		log.code, shown = da.UserCode, time.Now()
		log.mu.Unlock()
	}
	_, err := login.Device(ctxT(t), cfg)
	require.NoError(t, err)
	assert.EqualValues(t, 2, p.DevicePolls())
	assert.EqualValues(t, 2, p.Requests("/oauth/token"), "one request per poll")
	require.Len(t, log.at, 2)
	// Polls go on a ticker started after the code was shown: the n-th
	// comes no sooner than n intervals after it, however late the
	// requests travel (the gap between two can be shorter).
	assert.GreaterOrEqual(t, log.at[0].Sub(shown), time.Second, "the first poll waits the interval")
	assert.GreaterOrEqual(t, log.at[1].Sub(shown), 2*time.Second, "the second, two")
}

// slow_down adds 5 s to the interval.
func TestDeviceSlowDown(t *testing.T) {
	if testing.Short() {
		t.Skip("waits the 6 s a slow_down asks for")
	}
	log := &pollLog{onNth: func(n int) error {
		if n == 1 {
			return context.DeadlineExceeded // the provider answers slow_down
		}
		return nil
	}}
	p := start(t, logintest.Options{OnDevicePoll: log.poll})
	log.p = p
	cfg := config(p, store.NewMemory())
	cfg.OnDeviceCode = func(da *oauth2.DeviceAuthResponse) { log.mu.Lock(); log.code = da.UserCode; log.mu.Unlock() }
	_, err := login.Device(ctxT(t), cfg)
	require.NoError(t, err)
	require.Len(t, log.at, 2)
	assert.GreaterOrEqual(t, log.at[1].Sub(log.at[0]), 5900*time.Millisecond, "1 s interval + 5 s (less the requests' jitter)")
}

// Nobody approves: the login ends when the code expires, having polled no
// later than expires_in.
func TestDeviceCodeExpires(t *testing.T) {
	p := start(t, logintest.Options{DeviceLifetime: 2 * time.Second})
	cfg := config(p, store.NewMemory())
	cfg.OnDeviceCode = func(*oauth2.DeviceAuthResponse) {}
	began := time.Now()
	_, err := login.Device(ctxT(t), cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "expired")
	assert.Less(t, time.Since(began), 10*time.Second)
	assert.LessOrEqual(t, p.DevicePolls(), int64(2), "no poll past expires_in")
}

// The default OnDeviceCode prints the URI, the complete URI and the code.
func TestDeviceCodePrinted(t *testing.T) {
	p := start(t, logintest.Options{})
	cfg := config(p, store.NewMemory())
	out := &prompt{}
	cfg.Prompt, cfg.OnDeviceCode = out, nil
	ctx, cancel := context.WithCancel(ctxT(t))
	go func() {
		for !strings.Contains(out.String(), "code") {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := login.Device(ctx, cfg)
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, out.String(), p.Issuer+"/device")
}

// No secret in any output or error: a token endpoint that quotes the
// whole request back (code, verifier, client secret) in its error.
func TestSecretsNeverShown(t *testing.T) {
	var seen []string
	var mu sync.Mutex
	p := start(t, logintest.Options{Middleware: func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/oauth/token" {
				next.ServeHTTP(w, r)
				return
			}
			r.ParseForm()
			mu.Lock()
			for _, k := range []string{"code", "code_verifier", "client_secret", "refresh_token", "device_code"} {
				if v := r.PostForm.Get(k); v != "" {
					seen = append(seen, v)
				}
			}
			if _, pw, ok := r.BasicAuth(); ok {
				seen = append(seen, pw)
			}
			mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			q, _ := url.QueryUnescape(r.PostForm.Encode())
			w.Write([]byte(`{"error":"invalid_grant","error_description":"bad request: ` + q + " " + r.Header.Get("Authorization") + `"}`))
		})
	}})
	out := &prompt{}
	cfg := config(p, store.NewMemory())
	cfg.ClientID, cfg.ClientSecret, cfg.Prompt = p.ConfidentialClientID, p.ClientSecret, out
	_, err1 := login.Browser(ctxT(t), cfg)
	require.Error(t, err1)
	cfg.ClientID, cfg.ClientSecret = p.PublicClientID, ""
	_, err2 := login.Browser(ctxT(t), cfg)
	require.Error(t, err2)
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, seen)
	seen = append(seen, p.ClientSecret)
	for _, s := range seen {
		for _, text := range []string{err1.Error(), err2.Error(), out.String()} {
			assert.NotContains(t, text, s)
		}
	}
	_ = httptest.NewRecorder
}

// An OnDeviceCode that blocks (which it must not) ends the sign-in when
// ctx ends, rather than hang it: before, Device waited for it whatever
// ctx said.
func TestBlockingOnDeviceCodeIsBounded(t *testing.T) {
	p := start(t, logintest.Options{})
	cfg := config(p, store.NewMemory())
	release := make(chan struct{})
	defer close(release)
	cfg.OnDeviceCode = func(*oauth2.DeviceAuthResponse) { <-release }
	ctx, cancel := context.WithTimeout(ctxT(t), 500*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := login.Device(ctx, cfg)
		done <- err
	}()
	select {
	case err := <-done:
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Contains(t, err.Error(), "OnDeviceCode did not return")
	case <-time.After(20 * time.Second):
		t.Fatal("Device still waits for OnDeviceCode 20 s after its context ended")
	}
}

// A panic in OnDeviceCode that quotes the device code (the secret that
// polls for the token) is an error without it.
func TestOnDeviceCodePanicShowsNoDeviceCode(t *testing.T) {
	p := start(t, logintest.Options{})
	cfg := config(p, store.NewMemory())
	var code string
	cfg.OnDeviceCode = func(da *oauth2.DeviceAuthResponse) {
		code = da.DeviceCode
		panic("cannot show " + da.DeviceCode)
	}
	_, err := login.Device(ctxT(t), cfg)
	require.Error(t, err)
	require.NotEmpty(t, code)
	assert.Contains(t, err.Error(), "OnDeviceCode panicked")
	assert.NotContains(t, err.Error(), code)
}
