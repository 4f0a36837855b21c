package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// lockedBuffer is a bytes.Buffer safe for the program's goroutine and
// the test's.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs the program until the test ends and returns the address
// its metrics are served on.
func start(t *testing.T, o options) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &lockedBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, o, out) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if line, ok := strings.CutPrefix(out.String(), "metrics on http://"); ok {
			return strings.TrimSuffix(strings.TrimSpace(strings.SplitN(line, "\n", 2)[0]), "/metrics")
		}
		select {
		case err := <-done:
			t.Fatalf("program ended: %v\n%s", err, out)
		case <-time.After(10 * time.Millisecond):
		}
		require.True(t, time.Now().Before(deadline), "the program did not listen within 10s")
	}
}

// TestMetricsEndpoint: the program serves the tokenmgr metrics in the
// Prometheus text format under their Prometheus names.
func TestMetricsEndpoint(t *testing.T) {
	addr := start(t, options{listen: "127.0.0.1:0", lifetime: 10 * time.Second, every: 10 * time.Millisecond, revokeEvery: 3})
	want := []string{
		`tokenmgr_refreshes_total{`,
		`tokenmgr_rejections_total{`,
		`tokenmgr_replays_total{`,
		`tokenmgr_token_requests_total{`,
		`tokenmgr_refresh_duration_seconds_bucket{`,
		`tokenmgr_token_time_left_seconds{`,
	}
	deadline := time.Now().Add(20 * time.Second)
	var body string
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/metrics")
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		missing := false
		for _, w := range want {
			missing = missing || !strings.Contains(body, w)
		}
		if !missing {
			require.Contains(t, body, `tokenmgr_credential="demo"`)
			require.Contains(t, body, `tokenmgr_code="InvalidClientTokenId"`)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("metrics missing after 20s:\n%s", body)
}

// freePort returns a loopback port nothing listens on.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestPrometheusScrapes: a real Prometheus, on a loopback port with a
// storage directory of its own, scrapes the program every second; its
// HTTP API then answers for the refresh counter (refreshes after
// rejections included), the rejections and the time left on the token.
func TestPrometheusScrapes(t *testing.T) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("prometheus is not installed (apt-get install prometheus)")
		}
		t.Skip("prometheus is not installed (apt-get install prometheus); skipping the scrape test")
	}
	target := start(t, options{listen: "127.0.0.1:0", lifetime: 10 * time.Second, every: 100 * time.Millisecond, revokeEvery: 5})
	// A second program whose token endpoint fails after the first token,
	// which expires in 3s: the expiry alert must fire for it alone.
	broken := start(t, options{listen: "127.0.0.1:0", lifetime: 3 * time.Second, every: 100 * time.Millisecond, breakAfter: 1})

	dir := t.TempDir()
	conf := filepath.Join(dir, "prometheus.yml")
	rules, err := filepath.Abs("alerts.yml")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(conf, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: [%q]
scrape_configs:
  - job_name: tokenmgr
    static_configs:
      - targets: [%q, %q]
`, rules, target, broken)), 0o600))
	port := freePort(t)
	logs := &lockedBuffer{}
	cmd := exec.Command(bin,
		"--config.file="+conf,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:"+strconv.Itoa(port),
	)
	cmd.Stdout, cmd.Stderr = logs, logs
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus:\n%s", logs)
		}
	})

	api := fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?query=", port)
	query := func(q string) (float64, bool) {
		resp, err := http.Get(api + url.QueryEscape(q))
		if err != nil {
			return 0, false // not up yet
		}
		defer resp.Body.Close()
		var r struct {
			Status string
			Data   struct {
				Result []struct {
					Value [2]any
				}
			}
		}
		if json.NewDecoder(resp.Body).Decode(&r) != nil || r.Status != "success" || len(r.Data.Result) == 0 {
			return 0, false
		}
		s, _ := r.Data.Result[0].Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	checks := []struct {
		q    string
		want func(float64) bool
	}{
		{`sum(tokenmgr_refreshes_total{instance="` + target + `",tokenmgr_credential="demo",tokenmgr_outcome="fetched",tokenmgr_reason="invalid"})`, func(v float64) bool { return v >= 1 }},
		{`sum(tokenmgr_refreshes_total{instance="` + target + `",tokenmgr_credential="demo",tokenmgr_outcome="fetched"})`, func(v float64) bool { return v >= 2 }},
		{`sum(tokenmgr_rejections_total{instance="` + target + `",tokenmgr_code="InvalidClientTokenId",tokenmgr_replayed="true"})`, func(v float64) bool { return v >= 1 }},
		{`tokenmgr_token_time_left_seconds{instance="` + target + `",tokenmgr_credential="demo"}`, func(v float64) bool { return v > 0 && v <= 10 }},
		{`sum(tokenmgr_token_requests_total{instance="` + broken + `",error_type="5xx"})`, func(v float64) bool { return v >= 1 }},
		// Pending: it fires after the rule's "for: 1m".
		{`count(ALERTS{alertname="TokenmgrTokenExpiring",alertstate="pending",instance="` + broken + `"})`, func(v float64) bool { return v == 1 }},
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, c := range checks {
		for {
			v, ok := query(c.q)
			if ok && c.want(v) {
				t.Logf("%s = %v", c.q, v)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("Prometheus did not answer %s as wanted within 60s (last: %v, %v)", c.q, v, ok)
			}
			time.Sleep(200 * time.Millisecond) // Prometheus scrapes every second: poll its API
		}
	}

	// The README's alert rules evaluate without error; the healthy
	// program's token is refreshed in time, so the expiry alert spares it.
	require.Equal(t, "TokenmgrRejections:ok,TokenmgrTokenExpiring:ok", rulesHealth(t, port))
	for {
		// Pending at first (one sample of its counter: no increase yet),
		// then not.
		v, ok := query(`count(ALERTS{alertname="TokenmgrTokenExpiring",instance="` + target + `"})`)
		if !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the expiry alert is still %v for the healthy program", v)
		}
		time.Sleep(200 * time.Millisecond)
	}
	v, ok := query(`count(ALERTS{alertname="TokenmgrTokenExpiring",instance="` + broken + `"})`)
	require.True(t, ok && v == 1, "the broken program's alert is gone: %v %v", v, ok)
}

// rulesHealth lists Prometheus's rules as name:health, sorted, with the
// last error of any that failed.
func rulesHealth(t *testing.T, port int) string {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/rules", port))
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name, Health, LastError string
				}
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return err.Error()
	}
	var out []string
	for _, g := range r.Data.Groups {
		for _, ru := range g.Rules {
			out = append(out, ru.Name+":"+ru.Health+ru.LastError)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}
