//go:build unix

package redisstore

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/store"
)

// A Redis user whose ACL refuses the scripts a save runs gets an error
// naming the refusal, not store.ErrUnavailable: Redis answered, and the
// next call is refused too, so a Client must not take it for an outage to
// ride out at debug level while every save fails.
func TestACLRefusalIsNotAnOutage(t *testing.T) {
	r := startRedis(t)
	admin := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer admin.Close()
	ctx := context.Background()
	require.NoError(t, admin.Do(ctx, "ACL", "SETUSER", "app", "on", ">pw", "~*", "&*", "+@all", "-@scripting").Err())
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr, Username: "app", Password: "pw"})
	defer rdb.Close()
	s := newStore(t, rdb, Options{})
	defer s.Close()
	err := s.Save(ctx, "default", tokenRecord(t, "at", "", time.Now().Add(time.Hour)))
	require.Error(t, err)
	assert.NotErrorIs(t, err, store.ErrUnavailable)
	assert.Contains(t, err.Error(), "NOPERM")
	// Reads still work: Redis is up.
	_, err = s.Load(ctx, "default")
	assert.ErrorIs(t, err, store.ErrNotFound)
}

// The ACL that tokenmgr doctor's hint suggests (diagnose's storeHint) is
// enough for every command the store runs, its scripts' included: a
// refresh (lease, load, save, release), a save without a lease, a header
// record put back from the values, and a delete. The scripts read Redis's
// clock (TIME, in no category but @fast), so the ACL grants +time.
func TestHintedACLIsEnough(t *testing.T) {
	r := startRedis(t)
	admin := redis.NewClient(&redis.Options{Addr: r.Addr})
	defer admin.Close()
	ctx := context.Background()
	require.NoError(t, admin.Do(ctx, "ACL", "SETUSER", "app", "on", ">pw", "~tokenmgr:*", "&tokenmgr:*",
		"+@read", "+@write", "+@scripting", "+@pubsub", "+time").Err())
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr, Username: "app", Password: "pw"})
	defer rdb.Close()
	s := newStore(t, rdb, Options{})
	defer s.Close()
	unlock, err := s.Lock(ctx, credName)
	require.NoError(t, err)
	_, err = s.Load(ctx, credName)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NoError(t, s.Save(ctx, credName, tokenRecord(t, "at-1", "rt", time.Now().Add(time.Hour))))
	unlock()
	require.NoError(t, s.Save(ctx, credName, tokenRecord(t, "at-2", "rt", time.Now().Add(time.Hour))))
	require.NoError(t, admin.Del(ctx, s.headerKey()).Err())
	again := newStore(t, rdb, Options{})
	got, err := again.Load(ctx, credName)
	require.NoError(t, err)
	assert.Contains(t, string(got), "at-2")
	require.NoError(t, again.Delete(ctx, credName))
}
