//go:build unix

package redisstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/seal"
)

// redisClock is Redis's clock (TIME) in microseconds, the clock fences
// are granted on.
func redisClock(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	now, err := rdb.Time(context.Background()).Result()
	require.NoError(t, err)
	return now.UnixMicro()
}

// loadIs checks that s loads want under credName.
func loadIs(t *testing.T, s *Store, want []byte) {
	t.Helper()
	got, err := s.Load(context.Background(), credName)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "the stored record")
}

// Someone with write access to Redis and no key rewrites the fence of the
// stored value to a larger number, or to bytes that sort after any number.
// The fence used to sit outside the authenticated data and be compared as
// a string: every later Save returned nil and stored nothing, and Load kept
// returning the old value (with a rotating refresh token, a used-up one).
// Now the fence is authenticated: the value fails authentication, Load
// and Save say so (store.ErrTampered), and nothing is overwritten, as for
// any modified value, until an explicit Delete.
func TestForgedFenceIsNotObeyed(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	a := newStore(t, srv.Client(t), Options{Lease: time.Minute})
	b := newStore(t, srv.Client(t), Options{Lease: time.Minute})
	vk := a.valueKey(credName)
	orig := tokenRecord(t, "at-SECRET-1", "rt-SECRET-1", time.Now().Add(time.Hour))
	for _, forged := range []string{"9999999999999999", "5000000000000000", "~~~~~~~~~~~~~~~~", "0000000000000001"} {
		t.Run(forged, func(t *testing.T) {
			require.NoError(t, a.Delete(ctx, credName))
			require.NoError(t, a.Save(ctx, credName, orig))
			_, err := b.Load(ctx, credName) // b has authenticated the value
			require.NoError(t, err)
			v, err := rdb.Get(ctx, vk).Bytes()
			require.NoError(t, err)
			bad := bytes.Clone(v)
			copy(bad[headerSize:offNonce], forged)
			require.NoError(t, rdb.Set(ctx, vk, bad, 0).Err())

			next := tokenRecord(t, "at-SECRET-2", "rt-SECRET-2", time.Now().Add(time.Hour))
			// Under the refresh lease, as a Client saves.
			unlock, err := b.Lock(ctx, credName)
			require.NoError(t, err)
			defer unlock() // released on a failure too (twice is harmless)
			_, err = b.Load(ctx, credName)
			require.ErrorIs(t, err, store.ErrTampered, "Load returned the value with a forged fence")
			err = b.Save(ctx, credName, next)
			unlock()
			require.Error(t, err, "Save returned nil and stored nothing")
			assertRefused(t, rdb, vk, bad, err, store.ErrTampered)
			// Without a lease, by the replica that wrote the value.
			assertRefused(t, rdb, vk, bad, a.Save(ctx, credName, next), store.ErrTampered)

			// tokenmgr logout, then a save starts afresh.
			require.NoError(t, a.Delete(ctx, credName))
			require.NoError(t, b.Save(ctx, credName, next))
			loadIs(t, a, next)
		})
	}
}

// Redis's clock steps back (an NTP step, a VM restored, a failover to a
// replica with a slower clock): the stored value, saved before, carries an
// authenticated fence an hour ahead of Redis's clock, as a replica holding
// the fleet's key wrote it. Redis's clock is not something a test can
// step, so the test writes that value. Every later save used to be
// dropped (Save returned nil, Load kept the old token) until the clock
// caught up. Now a lease, or a save without one, is granted a fence above
// the stored value's, and the save is stored; the clock is logged, naming
// Redis. A writer whose lease ran out before such a value was saved gets an
// error naming Redis's clock, never nil-and-nothing.
func TestRedisClockSteppedBack(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	var logs logBuf
	a := newStore(t, srv.Client(t), Options{Lease: time.Minute})
	b := newStore(t, srv.Client(t), Options{Lease: time.Minute, Logger: logs.logger()})
	vk := a.valueKey(credName)
	require.NoError(t, a.Save(ctx, "warm-up", tokenRecord(t, "at-SECRET-w", "rt-SECRET-w", time.Now().Add(time.Hour))))
	h, k, err := a.header(ctx)
	require.NoError(t, err)
	old := tokenRecord(t, "at-SECRET-old", "rt-SECRET-old", time.Now().Add(time.Hour))
	// aheadBy puts a value saved with a fence d ahead of Redis's clock.
	aheadBy := func(d time.Duration) []byte {
		t.Helper()
		v, err := sealValue(h, k, credName, formatFence(redisClock(t, rdb)+d.Microseconds()), old, rand.Reader)
		require.NoError(t, err)
		require.NoError(t, rdb.Set(ctx, vk, v, 0).Err())
		return v
	}

	// A refresh under the lease: lease, load, save.
	aheadBy(time.Hour)
	unlock, err := b.Lock(ctx, credName)
	require.NoError(t, err)
	defer unlock()
	loadIs(t, b, old)
	next := tokenRecord(t, "at-SECRET-next", "rt-SECRET-next", time.Now().Add(time.Hour))
	require.NoError(t, b.Save(ctx, credName, next))
	unlock()
	loadIs(t, a, next)
	assert.Contains(t, logs.String(), "the stored value's fence is ahead of Redis's clock")
	assert.Contains(t, logs.String(), srv.Addr, "the log names Redis")
	// The next lease is ordered after that save, still ahead of the clock.
	unlock, err = a.Lock(ctx, credName)
	require.NoError(t, err)
	defer unlock()
	again := tokenRecord(t, "at-SECRET-again", "rt-SECRET-again", time.Now().Add(time.Hour))
	require.NoError(t, a.Save(ctx, credName, again))
	unlock()
	loadIs(t, b, again)

	// A save without a lease (Redis did not answer Lock).
	aheadBy(time.Hour)
	loadIs(t, a, old)
	nolease := tokenRecord(t, "at-SECRET-nolease", "rt-SECRET-nolease", time.Now().Add(time.Hour))
	require.NoError(t, a.Save(ctx, credName, nolease))
	loadIs(t, b, nolease)

	// A lease that ran out, then a value saved with a fence an hour ahead
	// of the clock: an error naming Redis and its clock, and the value
	// stays.
	unlock, err = a.Lock(ctx, credName)
	require.NoError(t, err)
	defer unlock()
	require.NoError(t, rdb.Del(ctx, a.leaseKey(credName)).Err())
	was := aheadBy(time.Hour)
	err = a.Save(ctx, credName, tokenRecord(t, "at-SECRET-late", "rt-SECRET-late", time.Now().Add(time.Hour)))
	unlock()
	require.Error(t, err, "Save returned nil and stored nothing")
	assert.ErrorContains(t, err, "ahead of Redis's clock")
	assert.ErrorContains(t, err, a.String())
	assert.ErrorContains(t, err, credName)
	assert.NotContains(t, err.Error(), "SECRET")
	got, err := rdb.Get(ctx, vk).Bytes()
	require.NoError(t, err)
	assert.Equal(t, was, got)

	// A value whose fence is at the bound, so that grants no longer go
	// above it (someone who can write to Redis raised a fence just before
	// a lease was granted, then put the value back): the lease holder
	// still saves, and a save without a lease gets an error.
	v, err := sealValue(h, k, credName, formatFence(maxFence), old, rand.Reader)
	require.NoError(t, err)
	require.NoError(t, rdb.Set(ctx, vk, v, 0).Err())
	require.ErrorContains(t, a.Save(ctx, credName, next), "ahead of Redis's clock")
	unlock, err = b.Lock(ctx, credName)
	require.NoError(t, err)
	defer unlock()
	loadIs(t, b, old)
	require.NoError(t, b.Save(ctx, credName, next))
	unlock()
	loadIs(t, a, next)

	// Within the allowed skew, a lease that ran out while a later lease
	// saved is fenced out as before (TestExpiredLeaseHolderDoesNotReplaceANewerToken).
}

// sealV1 seals a value as format version 1 did: the fence outside the
// additional data.
func sealV1(t *testing.T, h *header, k *seal.Keys, name, fence string, plain []byte) []byte {
	t.Helper()
	out := make([]byte, offNonce+seal.NonceSize, minValue+len(plain))
	copy(out, h.raw[:])
	out[offVersion] = 1
	copy(out[headerSize:], fence)
	_, err := rand.Read(out[offNonce:])
	require.NoError(t, err)
	return k.Seal(out, out[offNonce:], plain, append(bytes.Clone(out[:headerSize]), name...))
}

// A value written by the previous format (version 1, fence not
// authenticated) is read and replaced, its fence not obeyed; a version 2
// value relabelled version 1 fails authentication.
func TestVersion1ValueReadAndReplaced(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	a := newStore(t, srv.Client(t), Options{Lease: time.Minute})
	vk := a.valueKey(credName)
	h, k, err := a.header(ctx)
	require.NoError(t, err)
	old := tokenRecord(t, "at-SECRET-v1", "rt-SECRET-v1", time.Now().Add(time.Hour))
	require.NoError(t, rdb.Set(ctx, vk, sealV1(t, h, k, credName, "9999999999999999", old), 0).Err())

	unlock, err := a.Lock(ctx, credName)
	require.NoError(t, err)
	defer unlock()
	loadIs(t, a, old)
	next := tokenRecord(t, "at-SECRET-v2", "rt-SECRET-v2", time.Now().Add(time.Hour))
	require.NoError(t, a.Save(ctx, credName, next))
	unlock()
	v, err := rdb.Get(ctx, vk).Bytes()
	require.NoError(t, err)
	assert.Equal(t, byte(version), v[offVersion], "rewritten in the current format")
	loadIs(t, a, next)

	v[offVersion] = 1
	require.NoError(t, rdb.Set(ctx, vk, v, 0).Err())
	_, err = a.Load(ctx, credName)
	require.ErrorIs(t, err, store.ErrTampered)
}
