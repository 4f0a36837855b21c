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
