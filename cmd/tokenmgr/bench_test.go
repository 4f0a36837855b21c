package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// BenchmarkTokenCommand runs the built `tokenmgr token` b.N times, as a
// shell loop around `$(tokenmgr token)` would, against a real token
// endpoint with a valid token already stored: what one invocation costs a
// user, process start-up included. It reports the median (ms/median) beside
// the mean, since a busy machine makes the mean jumpy.
//
// The file store is created at the default scrypt cost, as the CLI creates
// it. The keyring case needs a Secret Service (run it under scripts/test.sh,
// or dbus-run-session with gnome-keyring-daemon) and skips without one.
//
// It also reports the median CPU time of a run (cpu-ms/median, user and
// system): unlike wall time, it hardly moves with the load other programs
// put on the machine.
//
// With TOKENMGR_BENCH_BASELINE naming another tokenmgr binary (say, one
// built from main before a change), each iteration also runs that binary,
// on the same store, in alternating order, and reports its medians as
// baseline-ms/median and baseline-cpu-ms/median: on a shared machine whose load drifts, runs compared
// side by side show a difference that separate benchmark runs drown. ns/op
// then covers both runs.
func BenchmarkTokenCommand(b *testing.B) {
	s := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: 24 * time.Hour})
	b.Cleanup(s.Close)
	base := vars{"TOKENMGR_TOKEN_URL": s.TokenURL(), "TOKENMGR_CLIENT_ID": s.ClientID, "TOKENMGR_CLIENT_SECRET": s.ClientSecret}

	b.Run("store=file", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "credentials.enc")
		st, err := store.NewEncryptedFile(path, []byte(passphrase))
		require.NoError(b, err)
		require.NoError(b, st.Save(context.Background(), "__init", []byte("x")))
		benchToken(b, s, base.with("TOKENMGR_STORE", "file", "TOKENMGR_STORE_PATH", path, "TOKENMGR_STORE_PASSPHRASE", passphrase))
	})
	b.Run("store=keyring", func(b *testing.B) {
		if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
			b.Skip("no session bus: run under scripts/test.sh for the keyring case")
		}
		benchToken(b, s, base.with("TOKENMGR_STORE", "keyring", "TOKENMGR_KEY", "bench-"+randText(b)))
	})
	b.Run("store=auto(keyring)", func(b *testing.B) {
		if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
			b.Skip("no session bus: run under scripts/test.sh for the keyring case")
		}
		benchToken(b, s, base.with("TOKENMGR_KEY", "bench-"+randText(b)))
	})
	// A token response with a 6 KiB id_token, as some providers send: its
	// record is split into keyring chunks, one Secret Service Get each.
	b.Run("store=keyring,id_token=6KiB", func(b *testing.B) {
		if os.Getenv("DBUS_SESSION_BUS_ADDRESS") == "" {
			b.Skip("no session bus: run under scripts/test.sh for the keyring case")
		}
		big := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: 24 * time.Hour})
		b.Cleanup(big.Close)
		idToken := strings.Repeat("a", 2048) + "." + strings.Repeat("b", 4096) + "." + strings.Repeat("c", 86)
		big.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path != "/token" {
				return false
			}
			big.Issued.Add(1)
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(map[string]any{
				"access_token": "at-" + randText(b), "token_type": "Bearer", "expires_in": 86400, "id_token": idToken,
			})
			return true
		})
		env := vars{"TOKENMGR_TOKEN_URL": big.TokenURL(), "TOKENMGR_CLIENT_ID": big.ClientID, "TOKENMGR_CLIENT_SECRET": big.ClientSecret}
		benchToken(b, big, env.with("TOKENMGR_STORE", "keyring", "TOKENMGR_KEY", "bench-"+randText(b)))
	})
}

func benchToken(b *testing.B, s *tokenmgrtest.Server, env vars) {
	home := b.TempDir()
	environ := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_CACHE_HOME=" + filepath.Join(home, ".cache"), "PATH=" + os.Getenv("PATH")}
	for _, k := range []string{"DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"} {
		if v, ok := os.LookupEnv(k); ok {
			environ = append(environ, k+"="+v)
		}
	}
	for k, v := range env {
		environ = append(environ, k+"="+v)
	}
	// run runs bin's token command once: the token printed, and how long
	// the run took, by the clock and in CPU time.
	run := func(bin string) (string, sample) {
		var stdout, stderr bytes.Buffer
		cmd := exec.Command(bin, "token")
		cmd.Env = environ
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		d := time.Since(start)
		require.NoError(b, err, "%s token: %s", bin, stderr.String())
		return strings.TrimSpace(stdout.String()), sample{d, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()}
	}
	first, _ := run(binPath) // fetches and stores the token
	issued := s.Issued.Load()
	baseline := os.Getenv("TOKENMGR_BENCH_BASELINE")
	var samples, baseSamples []sample
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if baseline != "" && i%2 == 0 {
			tok, d := run(baseline)
			baseSamples = append(baseSamples, d)
			require.Equal(b, first, tok, "the baseline uses the stored token")
		}
		tok, d := run(binPath)
		samples = append(samples, d)
		require.Equal(b, first, tok, "the stored token is used")
		if baseline != "" && i%2 == 1 {
			tok, d := run(baseline)
			baseSamples = append(baseSamples, d)
			require.Equal(b, first, tok, "the baseline uses the stored token")
		}
	}
	b.StopTimer()
	require.Equal(b, issued, s.Issued.Load(), "the token endpoint is not asked again: the stored token is used")
	reportMedians(b, "", samples)
	if baseline != "" {
		reportMedians(b, "baseline-", baseSamples)
	}
}

// sample is one run of the command: wall and CPU time.
type sample struct{ wall, cpu time.Duration }

// reportMedians reports the median wall and CPU times of ss in
// milliseconds, as prefix+"ms/median" and prefix+"cpu-ms/median".
func reportMedians(b *testing.B, prefix string, ss []sample) {
	med := func(f func(sample) time.Duration) float64 {
		ds := make([]time.Duration, len(ss))
		for i, s := range ss {
			ds[i] = f(s)
		}
		slices.Sort(ds)
		return float64(ds[len(ds)/2].Microseconds()) / 1000
	}
	b.ReportMetric(med(func(s sample) time.Duration { return s.wall }), prefix+"ms/median")
	b.ReportMetric(med(func(s sample) time.Duration { return s.cpu }), prefix+"cpu-ms/median")
}
