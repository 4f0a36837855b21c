//go:build unix

package redisstore

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/store"
)

// Redis down at start, then back: the Store starts anyway, every call
// returns at once (Lock giving way), the outage is logged once naming
// Redis, and sharing resumes when Redis answers.
func TestRedisDownAtStartThenBack(t *testing.T) {
	srv := unstartedRedis(t)
	var logs logBuf
	ctx := context.Background()
	s, err := New(ctx, srv.Client(t), fastOpts(Options{Logger: logs.logger()}))
	require.NoError(t, err, "an outage must not stop the program")

	for range 20 {
		start := time.Now()
		unlock, err := s.Lock(ctx, credName)
		require.NoError(t, err, "Lock gives way")
		unlock()
		_, err = s.Load(ctx, credName)
		require.ErrorIs(t, err, store.ErrUnavailable)
		require.ErrorContains(t, err, "Redis at "+srv.Addr)
		err = s.Save(ctx, credName, []byte(`{"v":1,"access_token":"x"}`))
		require.ErrorIs(t, err, store.ErrUnavailable)
		assert.Less(t, time.Since(start), 500*time.Millisecond)
	}
	assert.Equal(t, 1, strings.Count(logs.String(), "level=WARN"), logs.String())
	assert.Contains(t, logs.String(), "Redis unavailable")

	srv.Restart()
	waitFor(t, func() bool {
		return s.Save(ctx, credName, []byte(`{"v":1,"access_token":"x"}`)) == nil
	})
	got, err := s.Load(ctx, credName)
	require.NoError(t, err)
	assert.Contains(t, string(got), `"x"`)
	assert.Equal(t, 1, strings.Count(logs.String(), "Redis answers again"), logs.String())
	assert.Equal(t, 1, strings.Count(logs.String(), "level=WARN"))
	// The header record was created when Redis came back.
	assert.EqualValues(t, 1, srv.Client(t).Exists(ctx, s.headerKey()).Val())
}

// A Redis that accepts connections and never answers: every call gives
// up after the Timeout.
func TestRedisHungEveryCallBounded(t *testing.T) {
	srv := startRedis(t)
	var logs logBuf
	ctx := context.Background()
	timeout := 200 * time.Millisecond
	s := newStore(t, srv.Client(t), Options{Timeout: timeout, Logger: logs.logger()})
	srv.Stop()
	defer srv.Cont()

	start := time.Now()
	unlock, err := s.Lock(ctx, credName)
	require.NoError(t, err)
	unlock()
	assert.Less(t, time.Since(start), timeout+300*time.Millisecond, "Lock gave way after one timeout")
	start = time.Now()
	_, err = s.Load(ctx, credName)
	require.ErrorIs(t, err, store.ErrUnavailable)
	assert.Less(t, time.Since(start), timeout+300*time.Millisecond)
	assert.Contains(t, logs.String(), "Redis unavailable")

	srv.Cont()
	waitFor(t, func() bool {
		_, err := s.Load(ctx, credName)
		return err != nil && !strings.Contains(err.Error(), store.ErrUnavailable.Error())
	})
	assert.Contains(t, logs.String(), "Redis answers again")
}

// Redis refusing our credentials is an outage like any other: logged
// naming Redis and the reason, never a token outage.
func TestRedisRefusingAuth(t *testing.T) {
	srv := startRedis(t, "--requirepass", "right-PASSWORD")
	opts, err := ParseURL("redis://:wrong-PASSWORD@" + srv.Addr)
	require.NoError(t, err)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	var logs logBuf
	ctx := context.Background()
	s, err := New(ctx, rdb, fastOpts(Options{Logger: logs.logger()}))
	require.NoError(t, err)
	unlock, err := s.Lock(ctx, credName)
	require.NoError(t, err)
	unlock()
	_, err = s.Load(ctx, credName)
	require.ErrorIs(t, err, store.ErrUnavailable)
	out := logs.String()
	assert.Contains(t, out, "Redis unavailable")
	assert.Contains(t, out, "WRONGPASS")
	assert.NotContains(t, out, "PASSWORD")
}
