//go:build unix

package redisstore

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/store"
)

// Key names carry a tag of the credential name keyed with the fleet's key,
// not its SHA-256 (`printf default | sha256sum` found it, against the
// package doc's "Redis never sees a credential name"): the listing shows
// no tag anyone can compute from a guess, and stores with other
// passphrases or keys tag the same name differently. The header record
// keeps its name, so the fleet finds it.
func TestKeyNamesAreKeyed(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	tagOf := func(key, prefix string) string {
		t.Helper()
		tag, ok := strings.CutPrefix(key, prefix+"{")
		require.True(t, ok, key)
		tag, ok = strings.CutSuffix(tag, "}:value")
		require.True(t, ok, key)
		return tag
	}
	stores := map[string]*Store{
		"a:": newStore(t, srv.Client(t), Options{Prefix: "a:"}),
		"b:": newStore(t, srv.Client(t), Options{Prefix: "b:", Passphrase: []byte("another passphrase")}),
		"c:": newStore(t, srv.Client(t), Options{Prefix: "c:", Key: bytes.Repeat([]byte{7}, 32)}),
	}
	tags := map[string]bool{}
	for _, name := range []string{"default", credName} {
		sum := sha256.Sum256([]byte(name))
		unkeyed := hex.EncodeToString(sum[:16])
		for prefix, s := range stores {
			require.NoError(t, s.Save(ctx, name, tokenRecord(t, "at-SECRET", "rt-SECRET", time.Now().Add(time.Hour))))
			require.NotContains(t, dump(t, rdb), prefix+"{"+unkeyed+"}:value", "the value is named by the SHA-256 of the credential name")
			tag := tagOf(s.valueKey(name), prefix)
			assert.NotEqual(t, unkeyed, tag)
			assert.False(t, tags[tag], "two stores or names with one tag")
			tags[tag] = true
		}
	}
	keys := dump(t, rdb)
	for prefix := range stores {
		assert.Contains(t, keys, prefix+"header", "the fleet's header record keeps its name")
	}
	for k := range keys {
		for _, name := range []string{"default", credName} {
			sum := sha256.Sum256([]byte(name))
			assert.NotContains(t, k, hex.EncodeToString(sum[:16]))
			assert.NotContains(t, k, name)
		}
	}

	// Another replica of the same fleet (its own Store, same passphrase)
	// names it the same.
	again := newStore(t, srv.Client(t), Options{Prefix: "a:"})
	got, err := again.Load(ctx, "default")
	require.NoError(t, err)
	assert.Contains(t, string(got), "at-SECRET")
}

// A value kept by format version 1 under the SHA-256 of its name is read
// once (Load), saved under its keyed name by the next Save, and its old
// key deleted; Delete removes a value under either name.
func TestVersion1KeyNameReadOnceAndRewritten(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	a := newStore(t, srv.Client(t), Options{Lease: time.Minute})
	b := newStore(t, srv.Client(t), Options{Lease: time.Minute})
	h, k, err := a.header(ctx)
	require.NoError(t, err)
	old := tokenRecord(t, "at-SECRET-v1", "rt-SECRET-v1", time.Now().Add(time.Hour))
	sum := sha256.Sum256([]byte(credName))
	legacy := DefaultPrefix + "{" + hex.EncodeToString(sum[:16]) + "}:value"
	require.Equal(t, legacy, a.legacyKey(credName))
	require.NoError(t, rdb.Set(ctx, legacy, sealV1(t, h, k, credName, "0000000000000001", old), 0).Err())

	unlock, err := a.Lock(ctx, credName)
	require.NoError(t, err)
	defer unlock()
	loadIs(t, a, old)
	next := tokenRecord(t, "at-SECRET-next", "rt-SECRET-next", time.Now().Add(time.Hour))
	require.NoError(t, a.Save(ctx, credName, next))
	unlock()
	keys := dump(t, rdb)
	assert.NotContains(t, keys, legacy, "the version 1 key is deleted once saved under its keyed name")
	assert.Contains(t, keys, a.valueKey(credName))
	loadIs(t, b, next)

	// Delete reaches a value under its version 1 name too.
	v, err := sealValue(h, k, credName, formatFence(1), old, rand.Reader)
	require.NoError(t, err)
	require.NoError(t, rdb.Set(ctx, legacy, v, 0).Err())
	require.NoError(t, b.Delete(ctx, credName))
	_, err = a.Load(ctx, credName)
	require.ErrorIs(t, err, store.ErrNotFound)
	assert.NotContains(t, dump(t, rdb), legacy)
}

// During a rolling upgrade a version 1 replica may save a rotated refresh
// token under the version 1 key name after a version 2 replica read the
// value there and before it saves under the keyed name: that save must not
// delete the newer value, which is the only copy of the rotated token.
func TestVersion1KeyKeptWhenChangedSinceLoad(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	a := newStore(t, srv.Client(t), Options{Lease: time.Minute})
	h, k, err := a.header(ctx)
	require.NoError(t, err)
	legacy := a.legacyKey(credName)
	old := tokenRecord(t, "at-SECRET-v1", "rt-SECRET-v1", time.Now().Add(time.Hour))
	require.NoError(t, rdb.Set(ctx, legacy, sealV1(t, h, k, credName, "0000000000000001", old), 0).Err())
	loadIs(t, a, old)

	// A version 1 replica rotates the refresh token and saves it there.
	rotated := sealV1(t, h, k, credName, "0000000000000002", tokenRecord(t, "at-SECRET-v1b", "rt-SECRET-v1b", time.Now().Add(time.Hour)))
	require.NoError(t, rdb.Set(ctx, legacy, rotated, 0).Err())

	require.NoError(t, a.Save(ctx, credName, tokenRecord(t, "at-SECRET-next", "rt-SECRET-next", time.Now().Add(time.Hour))))
	got, err := rdb.Get(ctx, legacy).Bytes()
	require.NoError(t, err, "the version 1 replica's newer value was deleted")
	assert.Equal(t, rotated, got)
}
