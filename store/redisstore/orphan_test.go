//go:build unix

package redisstore

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// stallProxy forwards TCP to a redis-server; while stalled, Redis's
// answers are held back (the commands still reach Redis and run): a
// client that gives up waiting has had its command done all the same, as
// when a loaded machine reads the answer after the deadline.
type stallProxy struct {
	ln   net.Listener
	mu   sync.Mutex
	gate chan struct{} // closed: answers flow
}

func newStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &stallProxy{ln: ln, gate: make(chan struct{})}
	close(p.gate)
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); p.unstall(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			wg.Go(func() { io.Copy(s, c); s.Close() })
			wg.Go(func() {
				defer c.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 {
						<-p.open()
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			})
		}
	})
	return p
}

// stalledClient is a Redis client that reaches target through a
// stallProxy, closed when the test ends.
func stalledClient(t *testing.T, target string) (*stallProxy, *redis.Client) {
	t.Helper()
	p := newStallProxy(t, target)
	opts, err := ParseURL("redis://" + p.ln.Addr().String())
	require.NoError(t, err)
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return p, c
}

func (p *stallProxy) open() chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.gate
}

func (p *stallProxy) stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gate = make(chan struct{})
}

func (p *stallProxy) unstall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
}

// A take of the lease that Redis did but whose answer came too late (the
// caller's context ended, or Timeout passed and Lock gave way) left a
// lease nobody held and nobody released: every other replica waited for
// it to expire (5s in the fleet tests, the "SLOW 5145ms" callers under
// load). Lock now deletes the lease it may have taken, and wakes the
// waiters.
func TestLockThatGaveUpLeavesNoLease(t *testing.T) {
	for _, tc := range []struct {
		name    string
		timeout time.Duration // the Store's Options.Timeout
		ctx     time.Duration // the Lock's context
		wantErr bool
	}{
		{"context ended", 10 * time.Second, 200 * time.Millisecond, true},
		{"Redis slow: gave way", 200 * time.Millisecond, 10 * time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startRedis(t)
			p, viaProxy := stalledClient(t, srv.Addr)
			a := newStore(t, viaProxy, Options{Lease: time.Minute, Timeout: tc.timeout})
			b := newStore(t, srv.Client(t), Options{Lease: time.Minute})
			b.pollCap = time.Minute // only a release message wakes b in time
			ctx := context.Background()

			unlock, err := a.Lock(ctx, credName) // loads the scripts: the take below is one EVALSHA
			require.NoError(t, err)
			unlock()

			p.stall()
			lctx, cancel := context.WithTimeout(ctx, tc.ctx)
			release, err := a.Lock(lctx, credName)
			cancel()
			if tc.wantErr {
				require.ErrorIs(t, err, context.DeadlineExceeded)
			} else {
				require.NoError(t, err)
				release() // a no-op: a gave way
			}
			rdb := srv.Client(t)
			require.EqualValues(t, 1, rdb.Exists(ctx, a.leaseKey(credName)).Val(), "Redis took the lease for a")
			p.unstall()

			bctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			unlock, err = b.Lock(bctx, credName)
			require.NoError(t, err, "b waited for a lease nobody holds")
			unlock()
		})
	}
}

// dropTakenRunning counts the goroutines releasing a lease a Lock gave up
// on.
func dropTakenRunning() int {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "redisstore.(*Store).dropTaken")
}

// stackHas reports whether some goroutine's stack has fn in it.
func stackHas(fn string) bool {
	buf := make([]byte, 1<<20)
	n := runtime.Stack(buf, true)
	return strings.Contains(string(buf[:n]), fn)
}

// Close waits for the release of a lease a Lock gave up on: nothing of the
// Store uses the caller's client after Close returns, and a Store that
// owns its client sends the release before closing it, so the lease does
// not outlive it.
func TestCloseWaitsForTheReleaseOfAnAbandonedTake(t *testing.T) {
	for _, owned := range []bool{false, true} {
		t.Run(fmt.Sprintf("owned=%v", owned), func(t *testing.T) {
			srv := startRedis(t)
			p, viaProxy := stalledClient(t, srv.Addr)
			a := newStore(t, viaProxy, Options{Lease: time.Minute, Timeout: 2 * time.Second})
			a.owned = owned
			ctx := context.Background()
			unlock, err := a.Lock(ctx, credName)
			require.NoError(t, err)
			unlock()

			p.stall() // the next take runs in Redis; its answer is held back
			lctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			_, err = a.Lock(lctx, credName)
			cancel()
			require.Error(t, err)
			require.Eventually(t, func() bool { return dropTakenRunning() > 0 }, 10*time.Second, time.Millisecond, "the release waits for Redis")

			closed := make(chan error, 1)
			go func() { closed <- a.Close() }()
			returned := false
			require.Eventually(t, func() bool {
				select {
				case err := <-closed:
					require.NoError(t, err)
					returned = true
					return true
				default:
					return stackHas("redisstore.(*Store).Close(") // waiting
				}
			}, 10*time.Second, time.Millisecond)
			if returned {
				require.Zero(t, dropTakenRunning(), "Close returned while the release still ran")
			}
			p.unstall() // Redis answers: the release gets through
			select {
			case err := <-closed:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				require.FailNow(t, "Close did not return after Redis answered")
			}
			require.Zero(t, dropTakenRunning())
			require.Zero(t, srv.Client(t).Exists(ctx, a.leaseKey(credName)).Val(), "the abandoned lease outlived the Store")
		})
	}
}
