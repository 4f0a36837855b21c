package tokenmgr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// TestStressFailureModes runs the failure modes of issue 10 at once, under
// -race, beside normal traffic: a Source that panics every other call, an
// API that stalls after the headers of its error answers, a Source without
// TokenContext that never returns, and ordinary requests to an API that
// revokes tokens now and then. Every call must come back with what its
// case promises, and once the Clients are closed, the servers shut and the
// wedged calls let go, the goroutine count must return to its baseline.
func TestStressFailureModes(t *testing.T) {
	if testing.Short() {
		t.Skip("stress test")
	}
	baseline := runtime.NumGoroutine()
	check := leakCheck(t, 10*time.Second)

	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	stall := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		io.WriteString(w, `{"code":`)
		w.(http.Flusher).Flush()
		<-r.Context().Done() // until the client gives the body up
	}))

	// Normal traffic, through the transport, with revocations.
	normal, err := New(Config{Source: ClientCredentials(ccConfig(srv))})
	require.NoError(t, err)
	// A Source that panics every other call.
	var flip atomic.Int64
	panicky, err := New(Config{Source: ClientCredentials(ccConfig(srv)), RefreshTimeout: 2 * time.Second,
		TokenHTTPClient: &http.Client{Transport: rtFunc(func(r *http.Request) (*http.Response, error) {
			if flip.Add(1)%2 == 0 {
				panic("token transport bug")
			}
			return http.DefaultTransport.RoundTrip(r)
		})}})
	require.NoError(t, err)
	// A Source without TokenContext that never returns until released.
	wedge := make(chan struct{})
	var wedgedCalls atomic.Int64
	wedged, err := New(Config{RefreshTimeout: 100 * time.Millisecond, Source: tokenFunc(func() (*oauth2.Token, error) {
		wedgedCalls.Add(1)
		<-wedge
		return nil, errors.New("released")
	})})
	require.NoError(t, err)

	const workers, rounds = 8, 25
	var okReq, raced, revocations, replayedOK, panics, panicOK, stalls, timeouts atomic.Int64
	var peak atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 4*workers*rounds)
	for w := range workers {
		wg.Go(func() { // normal traffic
			hc := normal.HTTPClient()
			for i := range rounds {
				if w == 0 && i%5 == 4 {
					if tok, err := normal.Token(context.Background()); err == nil {
						srv.Revoke(tok.AccessToken)
						revocations.Add(1)
					}
				}
				revs := revocations.Load()
				resp, err := hc.Get(srv.URL + "/api")
				if err != nil {
					errs <- fmt.Errorf("normal: %w", err)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusForbidden && revocations.Load() != revs {
					// The replacement was revoked too while the request was
					// in flight: the second rejection goes to the caller.
					raced.Add(1)
					continue
				}
				if resp.StatusCode != http.StatusOK {
					errs <- fmt.Errorf("normal: status %d", resp.StatusCode)
					continue
				}
				okReq.Add(1)
			}
			replayedOK.Store(normal.Stats().Replays)
		})
		wg.Go(func() { // panics
			for range rounds {
				_, err := panicky.Token(context.Background())
				var pe *PanicError
				switch {
				case err == nil:
					panicOK.Add(1)
				case errors.As(err, &pe):
					panics.Add(1)
				default:
					errs <- fmt.Errorf("panicky: %w", err)
				}
				panicky.Invalidate(func() *oauth2.Token { tok, _ := panicky.Token(context.Background()); return tok }())
			}
		})
		wg.Go(func() { // stalled error bodies
			hc := normal.HTTPClient()
			for range rounds / 5 {
				resp, err := hc.Get(stall.URL + "/x")
				if err != nil {
					errs <- fmt.Errorf("stall: %w", err)
					continue
				}
				if resp.StatusCode != http.StatusForbidden {
					errs <- fmt.Errorf("stall: status %d", resp.StatusCode)
				}
				resp.Body.Close() // unread: the peek must end with the close
				stalls.Add(1)
			}
		})
		wg.Go(func() { // the wedged Source
			for range rounds / 5 {
				_, err := wedged.Token(context.Background())
				if !errors.Is(err, context.DeadlineExceeded) {
					errs <- fmt.Errorf("wedged: want a deadline error, got %v", err)
					continue
				}
				timeouts.Add(1)
			}
		})
	}
	done := make(chan struct{})
	go func() {
		for {
			if n := int64(runtime.NumGoroutine()); n > peak.Load() {
				peak.Store(n)
			}
			select {
			case <-done:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	}()
	wg.Wait()
	close(done)
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}

	// Close returns although calls of the wedged Source are still stuck.
	for _, c := range []*Client{normal, panicky, wedged} {
		require.NoError(t, c.Close())
	}
	stuck := runtime.NumGoroutine()
	close(wedge)
	srv.Close()
	stall.Close()
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	check()
	final := runtime.NumGoroutine()
	t.Logf("goroutines: baseline %d, peak %d, after Close with wedged calls stuck %d, final %d", baseline, peak.Load(), stuck, final)
	t.Logf("normal requests OK %d, rejected twice by revocations in flight %d (replays %d); panicky Token: %d panics, %d tokens; stalled answers returned %d; wedged calls %d, deadline errors %d",
		okReq.Load(), raced.Load(), replayedOK.Load(), panics.Load(), panicOK.Load(), stalls.Load(), wedgedCalls.Load(), timeouts.Load())
	assert.LessOrEqual(t, final, baseline, "goroutine count back to its baseline")
	assert.EqualValues(t, workers*rounds, okReq.Load()+raced.Load())
	assert.Positive(t, panics.Load())
	assert.Positive(t, panicOK.Load())
	assert.EqualValues(t, workers*(rounds/5), stalls.Load())
	assert.EqualValues(t, workers*(rounds/5), timeouts.Load())
	assert.LessOrEqual(t, wedgedCalls.Load(), int64(maxStuck), "abandoned calls bounded")
}
