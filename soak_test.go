package tokenmgr

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// TestSoak drives 50 goroutines through the transport against the
// tokenmgrtest API for TOKENMGR_SOAK_DURATION (default 30s) while tokens
// expire every 2 seconds and the token endpoint answers 503 to 20% of
// requests (seeded RNG, so a run's sequence of failures is repeatable).
//
// The API enforces expiry on the real clock. For a 2s token the Client's
// automatic windows are: background refresh from 0.5s (+ up to 10% jitter)
// before expiry, expired (callers wait for a new token) from 0.1s before.
// The server starts a token's life when it issues it and the Client when
// the answer arrives, so the Client's view runs late by the issuing
// latency; a request sent in the last 0.1s with a token the Client still
// holds valid can land after the server's expiry when latencies add up to
// more than 0.1s (seen under -race with 50 busy goroutines). Such a
// request is rejected once and replayed by the transport with a new token:
// the caller must see 200 all the same. So the target is
//
//	rejected == replays  (every rejection was replayed, no replay rejected)
//	caller_failures == 0
//
// and token requests stay near one per 1.5s refresh period plus the 20%
// failures (~1.7 per lifetime), far from a storm.
//
// Expiry alone rarely gets a request rejected (none in most runs), so to
// exercise the replay path under load the token in service is also revoked
// every TOKENMGR_SOAK_REVOKE (default 1.7s, unaligned with the lifetime;
// 0 turns it off): every request in flight with it is rejected and must be
// replayed. Only a token that has been in service for 300ms is revoked:
// revoking the fresh token a replay has just picked up would fail that
// replay, which no client can avoid (the server revoked its new token
// too), and would make caller_failures depend on scheduling. With that
// guard a caller failure needs a replay slower than 300ms.
//
// TOKENMGR_SOAK_LOG names a file for the Client's debug log.
//
// Run by .ci/run with TOKENMGR_SOAK=1; prints one greppable line:
//
//	soak: requests=… rejected=… replays=… caller_failures=… token_requests=… per_lifetime=… goroutines_before=… after=… heap_before=… after=…
func TestSoak(t *testing.T) {
	if os.Getenv("TOKENMGR_SOAK") == "" {
		t.Skip("soak: set TOKENMGR_SOAK=1 (run by .ci/run)")
	}
	dur := 30 * time.Second
	if v := os.Getenv("TOKENMGR_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "TOKENMGR_SOAK_DURATION")
		require.Positive(t, d, "TOKENMGR_SOAK_DURATION")
		dur = d
	}
	revokeEvery := 1700 * time.Millisecond
	if v := os.Getenv("TOKENMGR_SOAK_REVOKE"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "TOKENMGR_SOAK_REVOKE")
		revokeEvery = d
	}
	const (
		workers  = 50
		lifetime = 2 * time.Second
		failRate = 0.20
	)

	noLeaks := leakCheck(t, 10*time.Second)
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: lifetime})
	var rngMu sync.Mutex
	rng := rand.New(rand.NewPCG(2026, 5))
	var injected atomic.Int64
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/token" {
			return false
		}
		rngMu.Lock()
		fail := rng.Float64() < failRate
		rngMu.Unlock()
		if fail {
			injected.Add(1)
			http.Error(w, "injected outage", http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	// Dedicated transports, so their idle connections can be closed before
	// the goroutines are counted, with enough idle connections per host for
	// 50 workers (http.DefaultTransport keeps 2 and would churn through
	// ephemeral ports).
	apiTr := &http.Transport{MaxIdleConns: 2 * workers, MaxIdleConnsPerHost: 2 * workers}
	tokTr := &http.Transport{}
	var logger *slog.Logger
	if p := os.Getenv("TOKENMGR_SOAK_LOG"); p != "" {
		f, err := os.Create(p)
		require.NoError(t, err)
		defer f.Close()
		logger = slog.New(slog.NewTextHandler(f, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	c, err := New(Config{
		Source:          ClientCredentials(ccConfig(srv)),
		TokenHTTPClient: &http.Client{Transport: tokTr},
		Logger:          logger,
	})
	require.NoError(t, err)
	hc := c.HTTPClient()
	hc.Transport = c.Transport(apiTr) // what HTTPClient returns, on apiTr
	hc.Timeout = time.Minute

	goroutinesBefore, heapBefore := soakMem()

	var requests, failures atomic.Int64
	var failMu sync.Mutex
	var failSamples []string
	start := time.Now()
	deadline := start.Add(dur)
	var wg sync.WaitGroup
	var revocations atomic.Int64
	stopRevoker, revokerDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(revokerDone)
		if revokeEvery <= 0 {
			return
		}
		tick := time.NewTicker(revokeEvery)
		defer tick.Stop()
		for {
			select {
			case <-stopRevoker:
				return
			case <-tick.C:
			}
			e := c.cur.Load()
			if e != nil && time.Since(e.obtained) < 300*time.Millisecond {
				time.Sleep(300*time.Millisecond - time.Since(e.obtained)) // let it age
				e = c.cur.Load()
			}
			if e != nil && time.Since(e.obtained) >= 300*time.Millisecond {
				srv.Revoke(e.tok.AccessToken)
				revocations.Add(1)
			}
		}
	}()
	for i := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			url := fmt.Sprintf("%s/soak/%d", srv.URL, i)
			for time.Now().Before(deadline) {
				requests.Add(1)
				resp, err := hc.Get(url)
				bad := ""
				if err != nil {
					bad = err.Error()
				} else {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						bad = resp.Status
					}
				}
				if bad != "" {
					failures.Add(1)
					failMu.Lock()
					if len(failSamples) < 5 {
						failSamples = append(failSamples, fmt.Sprintf("%s after %v: %s", url, time.Since(start).Round(time.Millisecond), bad))
					}
					failMu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(stopRevoker)
	<-revokerDone

	st := c.Stats()
	require.NoError(t, c.Close())
	requireNoClientGoroutines(t)
	apiTr.CloseIdleConnections()
	tokTr.CloseIdleConnections()
	srv.Close()
	noLeaks()
	goroutinesAfter, heapAfter := soakMem()

	lifetimes := elapsed.Seconds() / lifetime.Seconds()
	tokenRequests := srv.TokenRequests.Load()
	perLifetime := float64(tokenRequests) / lifetimes
	rejected := srv.Rejected.Load()
	t.Logf("soak: requests=%d rejected=%d replays=%d caller_failures=%d token_requests=%d per_lifetime=%.2f goroutines_before=%d after=%d heap_before=%d after=%d "+
		"duration=%v rps=%.0f issued=%d injected_503=%d fetch_errors=%d invalidations=%d revocations=%d race=%v",
		requests.Load(), rejected, st.Replays, failures.Load(), tokenRequests, perLifetime,
		goroutinesBefore, goroutinesAfter, heapBefore, heapAfter,
		elapsed.Round(time.Millisecond), float64(requests.Load())/elapsed.Seconds(), srv.Issued.Load(),
		injected.Load(), st.FetchErrors, st.Invalidations, revocations.Load(), raceEnabled)
	for _, s := range failSamples {
		t.Logf("caller failure: %s", s)
	}

	assert.Positive(t, requests.Load())
	assert.Zero(t, failures.Load(), "caller-visible failures")
	assert.Equal(t, rejected, st.Replays, "every rejected request was replayed once, and no replay was rejected")
	// One new token per ~1.5s refresh period plus the injected failures is
	// ~1.7 per lifetime, plus one per revocation; a refresh storm would be
	// hundreds.
	assert.Less(t, perLifetime, 4.0, "token requests per token lifetime")
	if revokeEvery > 0 {
		assert.Positive(t, revocations.Load())
		assert.Positive(t, rejected, "revocations exercised the replay path")
		assert.LessOrEqual(t, st.Invalidations, revocations.Load()+rejected, "invalidations")
	}
	assert.Positive(t, injected.Load(), "the outage was injected")
	assert.LessOrEqual(t, goroutinesAfter, goroutinesBefore, "goroutines after teardown")
	assert.Less(t, int64(heapAfter)-int64(heapBefore), int64(64<<20), "heap growth after GC")
}

// soakMem returns the goroutine count and the live heap after a GC.
func soakMem() (goroutines int, heap uint64) {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return runtime.NumGoroutine(), ms.HeapAlloc
}
