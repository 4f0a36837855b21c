package redisstore

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenmgr/tokenmgr/store"
)

// fenceLua defines fence(value key), which grants a fence: Redis's clock
// (TIME) in microseconds, or one more than the fence of the value stored
// under the key when that is not lower. Fences of one credential so only
// grow, whatever Redis's clock does: after it steps back (an NTP step, a
// VM restored, a failover to a replica with a slower clock) the next lease
// is still ordered after the stored value, whose save would otherwise
// drop every save until the clock caught up. The stored fence read here
// is not authenticated (Redis holds no key); it only ever raises a
// fence, and is bounded (maxFence) so that a forged one cannot overflow
// it. It returns {fence, clock}. GETRANGE reads 16 bytes, not the value.
var fenceLua = `
local function fence(vkey)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local f = now
  local s = redis.pcall('GETRANGE', vkey, 48, 63)
  if type(s) == 'string' and string.find(s, '^%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d$') then
    local n = tonumber(s)
    if n >= f and n < ` + strconv.FormatInt(maxFence, 10) + ` then f = n + 1 end
  end
  return {f, now}
end
`

// takeScript takes the lease and grants its fence (fenceLua), which
// orders the leases and saves of one credential. {0, 0}: not taken.
// KEYS[1] lease key, KEYS[2] value key; ARGV[1] token, ARGV[2] lease in ms.
var takeScript = redis.NewScript(fenceLua + `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return fence(KEYS[2])
end
return {0, 0}
`)

// fenceScript grants a fence (fenceLua) to a save without a lease.
// KEYS[1] value key.
var fenceScript = redis.NewScript(fenceLua + `
return fence(KEYS[1])
`)

// releaseScript deletes the lease only for its holder and wakes the
// waiters. KEYS[1] lease key; ARGV[1] holder's token, ARGV[2] channel.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('PUBLISH', ARGV[2], 'released')
  return 1
end
return 0
`)

// renewScript extends the lease only for its holder. KEYS[1] lease key;
// ARGV[1] holder's token, ARGV[2] lease in ms.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
`)

// Lock takes the refresh lease on name: SET NX PX with a random token.
// While another replica holds it, Lock waits for its release (a message
// on the credential's channel, or a poll with jitter), bounded by ctx. The
// returned function releases the lease if this holder still has it
// (compare-and-delete) and wakes the waiters; until then the lease is
// renewed every Lease/3, so a slow refresh keeps it, and this Store's saves
// of name carry the lease's fence (see the package doc on fencing).
//
// When Redis does not answer, Lock gives way after at most one Timeout: it
// returns a no-op release and a nil error, so the caller refreshes on its
// own instead of waiting for a lock nobody can grant. Only ctx ending is
// an error. A take whose answer Lock did not wait for is undone in the
// background (if Redis did take the lease, it is released, within one
// Timeout; [Store.Close] waits for it), so that replicas rarely wait out a
// lease nobody holds: only when the release reaches Redis before the take
// (the two go on different connections) is the lease left to expire.
func (s *Store) Lock(ctx context.Context, name string) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if _, _, err := s.header(ctx); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// Redis does not answer, or the key is wrong (Load and Save say
		// so): give way, the caller refreshes on its own.
		return func() {}, nil
	}
	key, ch := s.leaseKey(name), s.channel(name)
	var b [16]byte
	_, _ = crand.Read(b[:])
	token := hex.EncodeToString(b[:])

	var ps *redis.PubSub
	pubsub := true
	defer func() {
		if ps != nil {
			ps.Close()
		}
	}()
	for {
		var fence []int64
		sent := false
		err := s.do(ctx, "take the refresh lease", func(ctx context.Context) error {
			var err error
			sent = true
			fence, err = takeScript.Run(ctx, s.rdb, []string{key, s.valueKey(name)}, token, s.lease.Milliseconds()).Int64Slice()
			return err
		})
		held := err == nil && len(fence) == 2 && fence[0] > 0
		if err != nil && sent {
			// Redis may have taken the lease for us and answered too
			// late: left alone, it would keep every replica waiting
			// until it expires.
			s.bg.Go(func() { s.dropTaken(key, ch, token) })
		}
		switch {
		case errors.Is(err, store.ErrUnavailable):
			return func() {}, nil // give way: the caller refreshes on its own
		case err != nil:
			return nil, err // the caller's ctx ended
		case held:
			s.fenceAhead(name, fence[0], fence[1])
			return s.hold(name, key, ch, token, formatFence(fence[0])), nil
		}
		if ps == nil && pubsub {
			// Subscribe, then try again at once: a release between the
			// SET and the SUBSCRIBE would otherwise be missed.
			if ps = s.subscribe(ctx, ch); ps == nil {
				pubsub = false
			}
			continue
		}
		wait := s.pollInterval()
		if ps != nil {
			_, err := ps.ReceiveTimeout(ctx, wait)
			var ne net.Error
			if err != nil && !(errors.As(err, &ne) && ne.Timeout()) && ctx.Err() == nil {
				ps.Close() // the subscription broke: poll from now on
				ps, pubsub = nil, false
			}
		} else {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
	}
}

// nextFence grants a fence to a save without a lease (fenceLua).
func (s *Store) nextFence(ctx context.Context, name string) (string, error) {
	var f []int64
	err := s.do(ctx, "grant a fence", func(ctx context.Context) error {
		var err error
		f, err = fenceScript.Run(ctx, s.rdb, []string{s.valueKey(name)}).Int64Slice()
		return err
	})
	if err != nil {
		return "", err
	}
	if len(f) != 2 || f[0] <= 0 || f[0] > maxFence {
		return "", fmt.Errorf("redisstore: %s: the fence script answered %v", s, f)
	}
	s.fenceAhead(name, f[0], f[1])
	return formatFence(f[0]), nil
}

// fenceAhead logs a fence granted more than maxFenceSkew ahead of Redis's
// clock: the stored value's fence was ahead of it, so Redis's clock
// stepped back since that value was saved.
func (s *Store) fenceAhead(name string, fence, clock int64) {
	if d := time.Duration(fence-clock) * time.Microsecond; d > maxFenceSkew {
		s.log.Warn("the stored value's fence is ahead of Redis's clock: the clock stepped back (an NTP step, a VM restored, a failover to a replica with a slower clock), or someone changed the value in Redis; saves stay ordered after it",
			"store", s.String(), "credential", name, "behind", d.Round(time.Millisecond))
	}
}

// dropTaken releases the lease if a take whose answer never came took it
// for token after all (compare-and-delete: a lease another holder took
// meanwhile stays), and wakes the waiters. It runs apart from Lock, which
// has given up already, within one Timeout, and past the health check:
// the take may have failed while Redis answered everything else.
func (s *Store) dropTaken(key, ch, token string) {
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	_ = releaseScript.Run(ctx, s.rdb, []string{key}, token, ch).Err()
}

// subscribe subscribes to ch and waits for Redis to confirm, or returns
// nil: the waiter then polls.
func (s *Store) subscribe(ctx context.Context, ch string) *redis.PubSub {
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	ps := s.rdb.Subscribe(cctx, ch)
	if _, err := ps.ReceiveTimeout(cctx, s.timeout); err != nil {
		ps.Close()
		return nil
	}
	return ps
}

// pollInterval is how long a waiter waits between attempts when no
// release message comes: an eighth of the lease, at most 200ms, with
// ±50% jitter so waiters do not ask in step.
func (s *Store) pollInterval() time.Duration {
	d := min(s.lease/8, s.pollCap)
	return d/2 + rand.N(d+1)
}

// hold renews the lease until the returned release function is called,
// and has this Store's saves of name carry the lease's fence meanwhile.
func (s *Store) hold(name, key, ch, token, fence string) func() {
	s.mu.Lock()
	s.held[name] = heldLease{fence: fence, token: token}
	s.mu.Unlock()
	stop, done := make(chan struct{}), make(chan struct{})
	go s.renew(key, token, stop, done)
	var once sync.Once
	return func() {
		once.Do(func() {
			close(stop)
			<-done
			s.mu.Lock()
			if s.held[name].token == token {
				delete(s.held, name)
			}
			s.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
			defer cancel()
			_ = s.do(ctx, "release the refresh lease", func(ctx context.Context) error {
				return releaseScript.Run(ctx, s.rdb, []string{key}, token, ch).Err()
			})
		})
	}
}

func (s *Store) renew(key, token string, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(s.lease / 3)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		var n int64
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		err := s.do(ctx, "renew the refresh lease", func(ctx context.Context) error {
			var err error
			n, err = renewScript.Run(ctx, s.rdb, []string{key}, token, s.lease.Milliseconds()).Int64()
			return err
		})
		cancel()
		if err == nil && n == 0 {
			s.log.Warn("refresh lease expired before it was renewed; another replica may refresh too (the newer token wins)",
				"store", s.String(), "lease", s.lease)
			return
		}
	}
}
