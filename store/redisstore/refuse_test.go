//go:build unix

package redisstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/seal"
)

// assertRefused checks that save failed with an error matching want, named
// the credential and no secret, and left the value at key byte for byte
// as it was (expiry included).
func assertRefused(t *testing.T, rdb *redis.Client, key string, was []byte, err, want error) {
	t.Helper()
	require.ErrorIs(t, err, want)
	assert.ErrorContains(t, err, "not overwritten")
	assert.ErrorContains(t, err, credName)
	for _, secret := range []string{"SECRET", testPass, "wrong-pass"} {
		assert.NotContains(t, err.Error(), secret)
	}
	got, gerr := rdb.Get(context.Background(), key).Bytes()
	require.NoError(t, gerr, "the stored value is gone")
	assert.Equal(t, was, got, "the stored value was overwritten")
	assert.Equal(t, time.Duration(-1), rdb.PTTL(context.Background(), key).Val(), "the stored value's expiry changed")
}

// A value under the fleet's own header that does not authenticate (a
// modified ciphertext or nonce, a payload sealed with another key, another
// credential's value, a truncated one) is refused by Save, the same
// replica's or another's, with or without the refresh lease, as the
// encrypted file refuses a file it cannot open: the error matches
// store.ErrTampered (a store.ErrDecrypt) or store.ErrFormat, and the value
// stays. An explicit Delete (tokenmgr logout) removes it; Save works after.
func TestSaveNeverReplacesAValueThatFailsAuthentication(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	a := newStore(t, srv.Client(t), Options{Lease: time.Minute})
	b := newStore(t, srv.Client(t), Options{Lease: time.Minute})
	vk := a.valueKey(credName)
	orig := tokenRecord(t, "at-SECRET-1", "rt-SECRET-1", time.Now().Add(time.Hour))
	require.NoError(t, a.Save(ctx, credName, orig))
	v, err := rdb.Get(ctx, vk).Bytes()
	require.NoError(t, err)
	require.NoError(t, a.Save(ctx, "other", tokenRecord(t, "at-SECRET-o", "rt-SECRET-o", time.Now().Add(time.Hour))))
	otherVal, err := rdb.Get(ctx, a.valueKey("other")).Bytes()
	require.NoError(t, err)

	// A payload sealed with another passphrase's key but carrying the
	// fleet's header, key check included: only the tag tells.
	h, _, err := a.header(ctx)
	require.NoError(t, err)
	wrongKeys, err := seal.NewDeriver([]byte("wrong-pass"), labels, nil).Keys(h.params, nil)
	require.NoError(t, err)
	foreign, err := sealValue(h, wrongKeys, credName, string(v[headerSize:offNonce]), orig, rand.Reader)
	require.NoError(t, err)

	flip := func(i int) []byte {
		c := bytes.Clone(v)
		c[i] ^= 1
		return c
	}
	cases := []struct {
		name string
		val  []byte
		want error
	}{
		{"ciphertext modified", flip(len(v) - 1), store.ErrTampered},
		{"nonce modified", flip(offNonce), store.ErrTampered},
		{"sealed with another key under the fleet's header", foreign, store.ErrTampered},
		{"another credential's value", otherVal, store.ErrTampered},
		{"truncated", v[:minValue-1], store.ErrFormat},
		{"key check modified", flip(offCheck), store.ErrWrongKey},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.NoError(t, rdb.Set(ctx, vk, tc.val, 0).Err())
			_, err := a.Load(ctx, credName)
			require.ErrorIs(t, err, tc.want)
			if !errors.Is(tc.want, store.ErrFormat) {
				require.ErrorIs(t, err, store.ErrDecrypt)
			}
			next := tokenRecord(t, "at-SECRET-2", "rt-SECRET-2", time.Now().Add(time.Hour))

			// The replica that wrote the value, without a lease.
			assertRefused(t, rdb, vk, tc.val, a.Save(ctx, credName, next), tc.want)
			// Another replica, holding the refresh lease (its fence is
			// newer than the stored value's).
			unlock, err := b.Lock(ctx, credName)
			require.NoError(t, err)
			assertRefused(t, rdb, vk, tc.val, b.Save(ctx, credName, next), tc.want)
			unlock()
			// Taking and releasing the lease did not touch it either.
			got, err := rdb.Get(ctx, vk).Bytes()
			require.NoError(t, err)
			assert.Equal(t, tc.val, got)

			// tokenmgr logout: an explicit delete removes it, and then a
			// save starts afresh.
			require.NoError(t, b.Delete(ctx, credName))
			require.NoError(t, b.Save(ctx, credName, next))
			got, err = a.Load(ctx, credName)
			require.NoError(t, err)
			assert.Equal(t, next, got)
		})
	}
}

// Replica A saves with key K1; replica B is configured with key K2. With
// the fleet's header record in place, or without it (the values tell), B
// does not start; when it got a Store anyway (Redis paused at New),
// neither its Save nor its lease replaces A's value: Save fails with
// store.ErrWrongKey and A still reads its token. Key names are keyed, so
// B cannot name A's value to delete it either; A's Delete removes it.
func TestWrongKeyReplicaNeverOverwritesTheFleetsValue(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	a := newStore(t, srv.Client(t), Options{Key: k1})
	saved := tokenRecord(t, "at-SECRET-a", "rt-SECRET-a", time.Now().Add(time.Hour))
	require.NoError(t, a.Save(ctx, credName, saved))
	vk := a.valueKey(credName)
	was, err := rdb.Get(ctx, vk).Bytes()
	require.NoError(t, err)
	evil := tokenRecord(t, "at-SECRET-b", "rt-SECRET-b", time.Now().Add(time.Hour))
	stillA := func() {
		t.Helper()
		got, err := rdb.Get(ctx, vk).Bytes()
		require.NoError(t, err)
		assert.Equal(t, was, got, "A's value was overwritten")
		plain, err := a.Load(ctx, credName)
		require.NoError(t, err)
		assert.Equal(t, saved, plain)
	}

	_, err = New(ctx, srv.Client(t), fastOpts(Options{Key: k2}))
	require.ErrorIs(t, err, store.ErrWrongKey)

	// Redis paused while B starts: B learns the header only at its first
	// call, and refuses then.
	srv.Stop()
	paused, err := New(ctx, srv.Client(t), fastOpts(Options{Key: k2, Timeout: 100 * time.Millisecond}))
	require.NoError(t, err)
	srv.Cont()
	waitFor(t, func() bool {
		return !errors.Is(paused.Save(ctx, credName, evil), store.ErrUnavailable)
	})
	unlock, err := paused.Lock(ctx, credName)
	require.NoError(t, err)
	err = paused.Save(ctx, credName, evil)
	unlock()
	require.ErrorIs(t, err, store.ErrWrongKey)
	stillA()

	// The header record lost: B does not start (the values were written
	// with another key), so it neither takes A's lease nor replaces A's
	// value.
	require.NoError(t, rdb.Del(ctx, a.headerKey()).Err())
	_, err = New(ctx, srv.Client(t), fastOpts(Options{Key: k2}))
	require.ErrorIs(t, err, store.ErrWrongKey)
	stillA()

	// Key names are keyed: a replica with another key cannot even name
	// A's value, so its delete (tokenmgr logout) fails and A's value
	// stays; A's delete removes it.
	require.ErrorIs(t, paused.Delete(ctx, credName), store.ErrWrongKey)
	stillA()
	require.NoError(t, a.Delete(ctx, credName))
	_, err = a.Load(ctx, credName)
	require.ErrorIs(t, err, store.ErrNotFound)
}
