//go:build unix

package redisstore

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/store"
)

// allocatedPer returns the bytes the process allocated per run of f.
func allocatedPer(runs int, f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / uint64(runs)
}

// A value far over the store's limit, written straight to Redis (not by a
// Store, which refuses to), is refused by Load and Save with an error
// naming its size, and no replica reads more of it than the limit: Load
// used to GET it whole before the size check (a 400 MiB value cost about
// 1.2 GiB per Load), and Save's script sent it back whole to be vetted.
// The value stays.
func TestOversizedValueNotReadWhole(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	a := newStore(t, srv.Client(t), Options{})
	vk := a.valueKey(credName)
	const size = 32 << 20
	big := bytes.Repeat([]byte("x"), size)
	require.NoError(t, rdb.Set(ctx, vk, big, 0).Err())
	big = nil

	var err error
	perLoad := allocatedPer(3, func() { _, err = a.Load(ctx, credName) })
	t.Logf("a %d MiB value: %d bytes allocated per Load", size>>20, perLoad)
	require.ErrorIs(t, err, store.ErrFormat)
	assert.ErrorContains(t, err, fmt.Sprintf("%d bytes", size), "the error names the value's size")
	assert.ErrorContains(t, err, credName)
	assert.Less(t, perLoad, uint64(4*store.MaxValueSize), "bytes allocated per Load of a %d MiB value", size>>20)

	next := tokenRecord(t, "at-SECRET", "rt-SECRET", time.Now().Add(time.Hour))
	perSave := allocatedPer(3, func() { err = a.Save(ctx, credName, next) })
	t.Logf("a %d MiB value: %d bytes allocated per Save", size>>20, perSave)
	require.ErrorIs(t, err, store.ErrFormat)
	assert.ErrorContains(t, err, "not overwritten")
	assert.ErrorContains(t, err, fmt.Sprintf("%d bytes", size))
	assert.Less(t, perSave, uint64(4*store.MaxValueSize), "bytes allocated per Save over a %d MiB value", size>>20)
	n, err := rdb.StrLen(ctx, vk).Result()
	require.NoError(t, err)
	assert.Equal(t, int64(size), n, "the value stays")

	// An empty value is unreadable, not missing.
	require.NoError(t, rdb.Set(ctx, vk, "", 0).Err())
	_, err = a.Load(ctx, credName)
	require.ErrorIs(t, err, store.ErrFormat)
	require.NoError(t, a.Delete(ctx, credName))
	_, err = a.Load(ctx, credName)
	require.ErrorIs(t, err, store.ErrNotFound)
}

// BenchmarkLoadOversized: bytes allocated by a Load of a value over the
// store's limit, written straight to Redis, by size (-benchmem).
func BenchmarkLoadOversized(b *testing.B) {
	srv := startRedis(b)
	// Bounds long enough to move the whole value, as a Load did.
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, ReadTimeout: time.Minute, WriteTimeout: time.Minute})
	b.Cleanup(func() { rdb.Close() })
	ctx := context.Background()
	s, err := New(ctx, rdb, Options{Key: bytes.Repeat([]byte{1}, 32), Timeout: time.Minute})
	require.NoError(b, err)
	for _, size := range []int{4 << 20, 64 << 20, 400 << 20} {
		b.Run(fmt.Sprintf("%dMiB", size>>20), func(b *testing.B) {
			require.NoError(b, rdb.Set(ctx, s.valueKey(credName), bytes.Repeat([]byte("x"), size), 0).Err())
			runtime.GC()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if _, err := s.Load(ctx, credName); err == nil {
					b.Fatal("an oversized value loaded")
				}
			}
		})
	}
}
