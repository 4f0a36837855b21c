//go:build unix

package redisstore

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
)

const (
	testPass = "correct horse battery staple"
	credName = "billing-api-prod"
)

// logBuf collects a Store's log, safe for concurrent use.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuf) logger() *slog.Logger { return slog.New(slog.NewTextHandler(l, nil)) }

// fastOpts are Options with a cheap scrypt cost for tests.
func fastOpts(o Options) Options {
	if o.Passphrase == nil && o.Key == nil {
		o.Passphrase = []byte(testPass)
	}
	o.ScryptLogN = 10
	if o.KeyCacheTTL == 0 {
		o.KeyCacheTTL = -1 // hermetic: no session cache
	}
	return o
}

func newStore(t *testing.T, rdb redis.UniversalClient, o Options) *Store {
	t.Helper()
	s, err := New(context.Background(), rdb, fastOpts(o))
	require.NoError(t, err)
	return s
}

func tokenRecord(t *testing.T, access, refresh string, expiry time.Time) []byte {
	t.Helper()
	b, err := record.FromToken(&oauth2.Token{AccessToken: access, RefreshToken: refresh, TokenType: "Bearer", Expiry: expiry}, time.Now()).Encode()
	require.NoError(t, err)
	return b
}

// dump returns every key in Redis and its value (strings only).
func dump(t *testing.T, rdb *redis.Client) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	out := map[string][]byte{}
	iter := rdb.Scan(ctx, 0, "*", 100).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		typ, err := rdb.Type(ctx, k).Result()
		require.NoError(t, err)
		if typ == "string" {
			out[k], err = rdb.Get(ctx, k).Bytes()
			require.NoError(t, err)
		} else {
			out[k] = nil
		}
	}
	require.NoError(t, iter.Err())
	return out
}

func TestRoundTripNothingReadable(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	s := newStore(t, rdb, Options{})
	ctx := context.Background()
	_, err := s.Load(ctx, credName)
	require.ErrorIs(t, err, store.ErrNotFound)

	data := tokenRecord(t, "at-SECRET-access", "rt-SECRET-refresh", time.Now().Add(time.Hour))
	require.NoError(t, s.Save(ctx, credName, data))
	got, err := s.Load(ctx, credName)
	require.NoError(t, err)
	assert.Equal(t, data, got)

	// Another replica (its own client and Store) reads it.
	s2 := newStore(t, srv.Client(t), Options{})
	got, err = s2.Load(ctx, credName)
	require.NoError(t, err)
	assert.Equal(t, data, got)

	keys := dump(t, rdb)
	require.Len(t, keys, 2, "the header record and one value: %v", keys)
	for k, v := range keys {
		assert.True(t, strings.HasPrefix(k, DefaultPrefix), k)
		for _, secret := range []string{"SECRET", credName, "billing", testPass} {
			assert.NotContains(t, k, secret)
			assert.False(t, bytes.Contains(v, []byte(secret)), "value of %s holds %q", k, secret)
		}
	}

	require.NoError(t, s.Delete(ctx, credName))
	_, err = s2.Load(ctx, credName)
	require.ErrorIs(t, err, store.ErrNotFound, "deleted for every replica")
	require.NoError(t, s.Delete(ctx, credName), "deleting a missing credential is not an error")
}

func TestRawKey(t *testing.T) {
	srv := startRedis(t)
	key := bytes.Repeat([]byte{7}, 32)
	s := newStore(t, srv.Client(t), Options{Key: key, Prefix: "raw:"})
	ctx := context.Background()
	require.NoError(t, s.Save(ctx, credName, []byte(`{"v":1,"access_token":"x"}`)))
	other := bytes.Repeat([]byte{8}, 32)
	_, err := New(ctx, srv.Client(t), Options{Key: other, Prefix: "raw:"})
	require.ErrorIs(t, err, store.ErrWrongKey)
	_, err = New(ctx, srv.Client(t), Options{Key: key[:31]})
	require.Error(t, err)
}

func TestRefusesToStartWithoutAKey(t *testing.T) {
	srv := startRedis(t)
	_, err := New(context.Background(), srv.Client(t), Options{})
	require.ErrorContains(t, err, "no passphrase or key")
	_, err = New(context.Background(), srv.Client(t), Options{Passphrase: []byte("p"), Key: make([]byte, 32)})
	require.Error(t, err)
	_, err = New(context.Background(), nil, Options{Passphrase: []byte("p")})
	require.Error(t, err)
	_, err = New(context.Background(), srv.Client(t), Options{Passphrase: []byte("p"), ScryptLogN: 30})
	require.Error(t, err)
	assert.Empty(t, dump(t, srv.Client(t)), "nothing written")
}

func TestWrongKeyIsAnErrorNeverAnOverwrite(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	s := newStore(t, rdb, Options{})
	data := tokenRecord(t, "at-1", "", time.Now().Add(time.Hour))
	require.NoError(t, s.Save(ctx, credName, data))
	before := dump(t, rdb)

	_, err := New(ctx, srv.Client(t), fastOpts(Options{Passphrase: []byte("wrong")}))
	require.ErrorIs(t, err, store.ErrWrongKey)
	assert.ErrorContains(t, err, "another passphrase or key")
	assert.NotContains(t, err.Error(), "wrong\"")

	// Redis lost the header record (say, restarted and reloaded only the
	// values): a replica with the wrong passphrase does not make a header
	// of its own (its key names would be its own too, and it would never
	// meet the fleet's values): the values tell it the key is wrong, and
	// it cannot overwrite the value written with the right one.
	require.NoError(t, rdb.Del(ctx, s.headerKey()).Err())
	_, err = New(ctx, srv.Client(t), fastOpts(Options{Passphrase: []byte("wrong")}))
	require.ErrorIs(t, err, store.ErrWrongKey)
	assert.ErrorContains(t, err, "another passphrase or key")
	after := dump(t, rdb)
	assert.Equal(t, before[s.valueKey(credName)], after[s.valueKey(credName)], "value untouched")
	assert.NotContains(t, after, s.headerKey(), "no header record of its own")

	// The replica with the right passphrase still replaces its own value.
	require.NoError(t, s.Save(ctx, credName, tokenRecord(t, "at-2", "", time.Now().Add(time.Hour))))
	got, err := s.Load(ctx, credName)
	require.NoError(t, err)
	r, err := record.Decode(got)
	require.NoError(t, err)
	assert.Equal(t, "at-2", r.AccessToken)
}

func TestSameKeyAnotherSaltReplaces(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	old := newStore(t, rdb, Options{})
	require.NoError(t, old.Save(ctx, credName, tokenRecord(t, "at-old", "", time.Now().Add(time.Hour))))
	// The header record is lost; a new replica with the same passphrase
	// makes a new one (another salt) and replaces the old value.
	require.NoError(t, rdb.Del(ctx, old.headerKey()).Err())
	young := newStore(t, srv.Client(t), Options{})
	got, err := young.Load(ctx, credName)
	require.NoError(t, err, "a value under another salt opens with the same passphrase")
	assert.Contains(t, string(got), "at-old")
	require.NoError(t, young.Save(ctx, credName, tokenRecord(t, "at-young", "", time.Now().Add(time.Hour))))
	got, err = old.Load(ctx, credName)
	require.NoError(t, err)
	assert.Contains(t, string(got), "at-young")
}

// A Redis shared with other applications holds many keys besides the
// fleet's. When the header record is lost, a new replica must still find
// the fleet's values among them and put their header back: a first SCAN
// page (about COUNT keys of the whole keyspace) seldom holds one, and a
// new header would give the new replica other key names (another salt),
// so that it would never meet the fleet's values nor its leases.
func TestHeaderRecoveredAmongManyKeys(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	old := newStore(t, rdb, Options{})
	require.NoError(t, old.Save(ctx, credName, tokenRecord(t, "at-old", "rt-old", time.Now().Add(time.Hour))))
	hdr, err := rdb.Get(ctx, old.headerKey()).Bytes()
	require.NoError(t, err)
	pipe := rdb.Pipeline()
	for i := range 20000 {
		pipe.Set(ctx, "other-app:"+strconv.Itoa(i), "x", 0)
	}
	_, err = pipe.Exec(ctx)
	require.NoError(t, err)
	require.NoError(t, rdb.Del(ctx, old.headerKey()).Err())

	young := newStore(t, srv.Client(t), Options{})
	got, err := rdb.Get(ctx, old.headerKey()).Bytes()
	require.NoError(t, err)
	assert.Equal(t, hdr, got, "the header the values were written under is put back")
	plain, err := young.Load(ctx, credName)
	require.NoError(t, err, "the new replica finds the fleet's value under its keyed name")
	assert.Contains(t, string(plain), "rt-old")
}

func TestTamperedAndForeignValues(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	s := newStore(t, rdb, Options{})
	require.NoError(t, s.Save(ctx, credName, tokenRecord(t, "at-1", "", time.Now().Add(time.Hour))))
	vk := s.valueKey(credName)
	v, err := rdb.Get(ctx, vk).Bytes()
	require.NoError(t, err)

	flipped := bytes.Clone(v)
	flipped[len(flipped)-1] ^= 1
	require.NoError(t, rdb.Set(ctx, vk, flipped, 0).Err())
	_, err = s.Load(ctx, credName)
	require.ErrorIs(t, err, store.ErrTampered)

	// A value moved to another credential's key does not open there.
	require.NoError(t, rdb.Set(ctx, s.valueKey("other"), v, 0).Err())
	_, err = s.Load(ctx, "other")
	require.ErrorIs(t, err, store.ErrTampered)

	require.NoError(t, rdb.Set(ctx, vk, "not ours", 0).Err())
	_, err = s.Load(ctx, credName)
	require.ErrorIs(t, err, store.ErrFormat)
	err = s.Save(ctx, credName, tokenRecord(t, "at-2", "", time.Now().Add(time.Hour)))
	require.ErrorIs(t, err, store.ErrFormat, "an unreadable value is not overwritten")
	got, err := rdb.Get(ctx, vk).Result()
	require.NoError(t, err)
	assert.Equal(t, "not ours", got)
}

func TestKeysExpireWithTheToken(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	s := newStore(t, rdb, Options{ExpiryMargin: 30 * time.Second})

	require.NoError(t, s.Save(ctx, "cc", tokenRecord(t, "at", "", time.Now().Add(time.Hour))))
	ttl, err := rdb.PTTL(ctx, s.valueKey("cc")).Result()
	require.NoError(t, err)
	assert.InDelta(t, (time.Hour + 30*time.Second).Seconds(), ttl.Seconds(), 5)

	require.NoError(t, s.Save(ctx, "rt", tokenRecord(t, "at", "rt", time.Now().Add(time.Hour))))
	ttl, err = rdb.PTTL(ctx, s.valueKey("rt")).Result()
	require.NoError(t, err)
	assert.Equal(t, time.Duration(-1), ttl, "a refresh token outlives its access token: kept")

	// The key really goes: a token that expired 29.9s ago is gone within
	// the margin.
	require.NoError(t, s.Save(ctx, "gone", tokenRecord(t, "at", "", time.Now().Add(-29*time.Second))))
	deadline := time.Now().Add(5 * time.Second)
	for rdb.Exists(ctx, s.valueKey("gone")).Val() == 1 {
		require.True(t, time.Now().Before(deadline), "key still there")
		time.Sleep(50 * time.Millisecond)
	}
	_, err = s.Load(ctx, "gone")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestTooLarge(t *testing.T) {
	srv := startRedis(t)
	s := newStore(t, srv.Client(t), Options{})
	err := s.Save(context.Background(), credName, make([]byte, store.MaxValueSize+1))
	require.ErrorIs(t, err, store.ErrTooLarge)
}

func TestStringHasNoSecret(t *testing.T) {
	srv := startRedis(t, "--requirepass", "redis-PASSWORD")
	opts, err := ParseURL("redis://:redis-PASSWORD@" + srv.Addr + "/0")
	require.NoError(t, err)
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	s := newStore(t, rdb, Options{})
	assert.Contains(t, s.String(), srv.Addr)
	assert.NotContains(t, s.String(), "PASSWORD")
	require.NoError(t, s.Save(context.Background(), credName, []byte(`{"v":1,"access_token":"x"}`)))
}
