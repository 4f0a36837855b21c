//go:build unix

package redisstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/store"
)

var _ store.Locker = (*Store)(nil)

func TestLeaseExcludesAndWakesWaiters(t *testing.T) {
	srv := startRedis(t)
	a := newStore(t, srv.Client(t), Options{Lease: time.Minute})
	b := newStore(t, srv.Client(t), Options{Lease: time.Minute})
	b.pollCap = time.Minute // only the release message can wake b in time
	ctx := context.Background()
	unlock, err := a.Lock(ctx, credName)
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = b.Lock(short, credName)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "held by a")

	got := make(chan time.Time, 1)
	go func() {
		u, err := b.Lock(ctx, credName)
		if err == nil {
			got <- time.Now()
			u()
		}
		close(got)
	}()
	// b subscribes and then waits; the release wakes it (its polls are
	// 30s or more apart, and the lease has a minute left).
	waitFor(t, func() bool {
		return srv.Client(t).PubSubNumSub(ctx, a.channel(credName)).Val()[a.channel(credName)] == 1
	})
	released := time.Now()
	unlock()
	unlock() // twice is harmless
	at, ok := <-got
	require.True(t, ok, "b took the lease")
	assert.Less(t, at.Sub(released), 10*time.Second, "woken by the release message, not a poll or the lease's end")
}

func TestLeaseRenewedWhileHeldAndExpiresWithoutAHolder(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	lease := time.Second
	a := newStore(t, srv.Client(t), Options{Lease: lease})
	b := newStore(t, srv.Client(t), Options{Lease: lease})
	ctx := context.Background()

	unlock, err := a.Lock(ctx, credName)
	require.NoError(t, err)
	// Held for three leases: renewal keeps b out the whole time.
	short, cancel := context.WithTimeout(ctx, 3*lease)
	_, err = b.Lock(short, credName)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded)
	unlock()

	// A holder that died (nobody renews, nobody releases): the next one
	// gets the lease when it runs out, within the lease and a poll.
	require.NoError(t, rdb.Set(ctx, a.leaseKey(credName), "dead-holder", lease).Err())
	start := time.Now()
	unlock, err = b.Lock(ctx, credName)
	require.NoError(t, err)
	unlock()
	assert.Less(t, time.Since(start), lease+time.Second, "within the lease and a poll (and a busy machine's delays)")
}

func TestLeaseReleasedOnlyByItsHolder(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	var logs logBuf
	a := newStore(t, srv.Client(t), Options{Lease: 300 * time.Millisecond, Logger: logs.logger()})
	ctx := context.Background()
	unlock, err := a.Lock(ctx, credName)
	require.NoError(t, err)
	// a's lease is gone (say, a paused past it) and b holds it now.
	require.NoError(t, rdb.Set(ctx, a.leaseKey(credName), "b-token", time.Minute).Err())
	waitFor(t, func() bool { return strings.Contains(logs.String(), "refresh lease expired") })
	unlock()
	v, err := rdb.Get(ctx, a.leaseKey(credName)).Result()
	require.NoError(t, err)
	assert.Equal(t, "b-token", v, "a's release left b's lease alone")
}

func TestLockHonoursContext(t *testing.T) {
	srv := startRedis(t)
	a := newStore(t, srv.Client(t), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := a.Lock(ctx, credName)
	require.ErrorIs(t, err, context.Canceled)
}

// waitFor polls cond until it holds, failing the test after 5s.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	waitWithin(t, 5*time.Second, cond)
}

// waitWithin is waitFor for what another process decides in its own time
// (a Sentinel failover).
func waitWithin(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			require.FailNow(t, "condition not met in time", "within %v", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Fencing: a replica whose lease expired while it fetched saves after the
// replica that took the lease next; its older token does not replace the
// newer one. A save without a lease is ordered by Redis's clock.
func TestExpiredLeaseHolderDoesNotReplaceANewerToken(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	a := newStore(t, srv.Client(t), Options{Lease: time.Minute})
	b := newStore(t, srv.Client(t), Options{Lease: time.Minute})
	c := newStore(t, srv.Client(t), Options{})
	load := func() string {
		t.Helper()
		v, err := c.Load(ctx, credName)
		require.NoError(t, err)
		return string(v)
	}

	unlockA, err := a.Lock(ctx, credName)
	require.NoError(t, err)
	require.NoError(t, rdb.Del(ctx, a.leaseKey(credName)).Err()) // a's lease runs out mid-fetch
	unlockB, err := b.Lock(ctx, credName)
	require.NoError(t, err)
	require.NoError(t, b.Save(ctx, credName, []byte(`{"v":1,"access_token":"from-b"}`)))
	unlockB()
	require.NoError(t, a.Save(ctx, credName, []byte(`{"v":1,"access_token":"from-a"}`)), "dropped, not an error")
	unlockA()
	assert.Contains(t, load(), "from-b", "the older lease's token did not replace the newer one")

	require.NoError(t, c.Save(ctx, credName, []byte(`{"v":1,"access_token":"from-c"}`)))
	assert.Contains(t, load(), "from-c", "a save without a lease is newer than every earlier lease")

	unlock, err := a.Lock(ctx, credName)
	require.NoError(t, err)
	require.NoError(t, a.Save(ctx, credName, []byte(`{"v":1,"access_token":"from-a-again"}`)))
	unlock()
	assert.Contains(t, load(), "from-a-again")
}
