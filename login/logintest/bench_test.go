package logintest_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/login"
	"github.com/tokenmgr/tokenmgr/login/logintest"
	"github.com/tokenmgr/tokenmgr/store"
)

// BenchmarkBrowserLogin is one browser login's protocol work against the
// in-process provider: discovery, the loopback listener, the
// authorization request and the provider's redirects (the person, played
// by an http.Client, takes no time), the code exchange, the ID token
// verified (JWKS fetched) and the record saved.
func BenchmarkBrowserLogin(b *testing.B) {
	p := start(b, logintest.Options{})
	cfg := config(p, store.NewMemory())
	for b.Loop() {
		if _, err := login.Browser(context.Background(), cfg); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/login")
}

// BenchmarkDeviceLogin is one device login with the code approved at
// once: the first poll waits the provider's 1 s interval, which
// overhead-ms/login leaves out (the person's time, whatever it is, is
// spent there).
func BenchmarkDeviceLogin(b *testing.B) {
	p := start(b, logintest.Options{PollInterval: time.Second})
	cfg := config(p, store.NewMemory())
	var waited time.Duration
	for b.Loop() {
		if _, err := login.Device(context.Background(), cfg); err != nil {
			b.Fatal(err)
		}
		waited += time.Second
	}
	b.ReportMetric(float64((b.Elapsed()-waited).Microseconds())/1000/float64(b.N), "overhead-ms/login")
}

// BenchmarkTokenAfterLogin runs the built "tokenmgr token" as a shell
// loop would, after a sign-in kept in the encrypted file or the keyring:
// what one invocation costs (process start-up included; no request to
// the issuer while the token is fresh), as cmd/tokenmgr's
// BenchmarkTokenCommand measures it for client credentials.
func BenchmarkTokenAfterLogin(b *testing.B) {
	p := start(b, logintest.Options{AccessTokenLifetime: 24 * time.Hour})
	b.Run("store=file", func(b *testing.B) {
		env, path := cliEnv(b, p)
		st, err := store.NewEncryptedFile(path, []byte(passphrase))
		require.NoError(b, err)
		benchTokenAfterLogin(b, p, env, st, tokenmgr.DefaultKey)
	})
	b.Run("store=keyring", func(b *testing.B) {
		if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
			b.Skip("no session bus: run under scripts/test.sh (or dbus-run-session with gnome-keyring-daemon) for the keyring case")
		}
		env, _ := cliEnv(b, p)
		key := "bench-login-" + randomHex(b)
		env = slices.DeleteFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "TOKENMGR_STORE") })
		env = append(env, "TOKENMGR_STORE=keyring", "TOKENMGR_KEY="+key)
		for _, k := range []string{"DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"} {
			if v, ok := os.LookupEnv(k); ok {
				env = append(env, k+"="+v)
			}
		}
		st := store.NewKeyring(envconfig.KeyringService)
		b.Cleanup(func() { st.Delete(context.Background(), key) })
		benchTokenAfterLogin(b, p, env, st, key)
	})
}

func randomHex(b *testing.B) string {
	x := make([]byte, 6)
	rand.Read(x)
	return hex.EncodeToString(x)
}

func benchTokenAfterLogin(b *testing.B, p *logintest.Provider, env []string, st store.Store, key string) {
	cfg := config(p, st)
	cfg.Key = key
	cfg.OnDeviceCode = func(*oauth2.DeviceAuthResponse) {}
	tok, err := login.Browser(context.Background(), cfg)
	require.NoError(b, err)
	bin := tokenmgrBinary(b)
	requests := p.Requests("/oauth/token")
	var walls []time.Duration
	for b.Loop() {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, "token")
		cmd.Env, cmd.Stdout, cmd.Stderr = env, &stdout, &stderr
		began := time.Now()
		err := cmd.Run()
		walls = append(walls, time.Since(began))
		require.NoError(b, err, "tokenmgr token: %s", stderr.String())
		require.Equal(b, tok.AccessToken, strings.TrimSpace(stdout.String()))
	}
	require.Equal(b, requests, p.Requests("/oauth/token"), "the stored sign-in is served without asking the issuer")
	slices.Sort(walls)
	b.ReportMetric(float64(walls[len(walls)/2].Microseconds())/1000, "ms/median")
}
