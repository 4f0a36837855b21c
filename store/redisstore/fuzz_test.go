package redisstore

import (
	"bytes"
	"crypto/rand"
	"errors"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/seal"
)

func TestParseURL(t *testing.T) {
	o, err := ParseURL("rediss://app:s3cret@redis.internal:6380/2")
	require.NoError(t, err)
	assert.Equal(t, "redis.internal:6380", o.Addr)
	assert.Equal(t, "app", o.Username)
	assert.Equal(t, "s3cret", o.Password)
	assert.Equal(t, 2, o.DB)
	require.NotNil(t, o.TLSConfig, "rediss is TLS")
	assert.Equal(t, "redis.internal", o.TLSConfig.ServerName)
	assert.Equal(t, DefaultTimeout, o.ReadTimeout)
	assert.True(t, o.ContextTimeoutEnabled)
	assert.Equal(t, -1, o.MaxRetries)

	o, err = ParseURL("redis://localhost?read_timeout=250ms&max_retries=2")
	require.NoError(t, err)
	assert.Nil(t, o.TLSConfig)
	assert.Equal(t, "localhost:6379", o.Addr)
	assert.Equal(t, 2, o.MaxRetries, "the URL's own settings win")

	for _, bad := range []string{
		"http://x:s3cret@host", "redis://x:s3cret@host/notadb", "redis://x:s3cret@host:bad",
		"redis://x:s3cret@host?nope=1", "s3cret", "redis://x:s3cret@host/1/2",
	} {
		_, err := ParseURL(bad)
		require.Error(t, err, bad)
		assert.NotContains(t, err.Error(), "s3cret", bad)
	}
}

// FuzzParseURL: no panic, and an error never quotes a password (of the
// URL's user, or a password= option), from ParseURL or NewClient.
func FuzzParseURL(f *testing.F) {
	for _, s := range []string{"redis://localhost", "rediss://u:p@h:1/0", "unix:///tmp/r.sock?db=1",
		"redis://:pw@h?dial_timeout=3", "redis://[::1]:6379", "redis://u:p%zz@h", "redis://h/x",
		"redis://s:26379?master_name=m&addr=s2:26379&password=pw", "rediss://u:p@n1:6379?addr=n2:6379&read_timeout=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var secrets []string
		if u, err := url.Parse(s); err == nil {
			secrets = u.Query()["password"]
			if p, ok := u.User.Password(); ok {
				secrets = append(secrets, p)
			}
		}
		noSecret := func(err error) {
			for _, p := range secrets {
				if len(p) >= 4 {
					require.NotContains(t, err.Error(), p, "the error quotes a password")
				}
			}
		}
		if o, err := ParseURL(s); err != nil {
			noSecret(err)
		} else {
			require.True(t, o.ContextTimeoutEnabled, "context deadlines not honoured with %q", s)
		}
		rdb, err := NewClient(s)
		if err != nil {
			noSecret(err)
			require.Nil(t, rdb)
			return
		}
		rdb.Close()
	})
}

// FuzzOpenValue: stored bytes from Redis (either format version) never
// panic the reader, cost at most the bounded key derivation, and errors
// are one of the store's sentinels; a sealed value round-trips, and one
// that opens as version 2 has a fence the save script can compare.
func FuzzOpenValue(f *testing.F) {
	lim := seal.Limits{MinLogN: 10, MaxLogN: 11, MaxR: 8, MaxP: 2, MaxMem: 2 << 20, MaxWork: 1 << 15}
	secret := []byte("fuzz")
	cache := map[seal.Params]*seal.Keys{}
	keys := func(p seal.Params, _ []byte) (*seal.Keys, error) {
		if p.KDF != seal.KDFScrypt {
			return nil, store.ErrWrongKey // as Store.keysFor: a passphrase does not open a raw-key value
		}
		if k, ok := cache[p]; ok {
			return k, nil
		}
		k, err := seal.Derive(p, secret, labels)
		if err == nil {
			cache[p] = k
		}
		return k, err
	}
	for _, p := range []seal.Params{{KDF: seal.KDFScrypt, LogN: 10, R: 8, P: 1}, {KDF: seal.KDFRawKey}} {
		sk := secret
		if p.KDF == seal.KDFRawKey {
			sk = bytes.Repeat([]byte{1}, 32)
		}
		k, err := seal.Derive(p, sk, labels)
		require.NoError(f, err)
		h := newHeader(p, k)
		for _, fence := range []int64{1, maxFence, maxFence + 1} {
			v, err := sealValue(h, k, "name", formatFence(fence), []byte(`{"v":1,"access_token":"x"}`), rand.Reader)
			require.NoError(f, err)
			f.Add(v, "name")
		}
		// Version 1: the fence outside the additional data.
		v1 := make([]byte, offNonce+seal.NonceSize)
		copy(v1, h.raw[:])
		v1[offVersion] = 1
		copy(v1[headerSize:], "~~~~~~~~~~~~~~~~")
		v1 = k.Seal(v1, v1[offNonce:], []byte(`{"v":1,"access_token":"x"}`), append(bytes.Clone(v1[:headerSize]), "name"...))
		f.Add(v1, "name")
	}
	f.Add([]byte("TOKENMGR"), "")
	f.Fuzz(func(t *testing.T, b []byte, name string) {
		plain, err := openValue(b, name, lim, keys)
		if err == nil && b[offVersion] >= 2 {
			_, ok := parseFence(b[headerSize:offNonce])
			require.True(t, ok, "opened with a fence that is not a number")
		}
		if err == nil {
			k, _ := keys(mustHeader(t, b, lim).params, nil)
			again, err := sealValue(mustHeader(t, b, lim), k, name, "", plain, rand.Reader)
			require.NoError(t, err)
			got, err := openValue(again, name, lim, keys)
			require.NoError(t, err)
			require.Equal(t, plain, got)
			return
		}
		require.True(t, errors.Is(err, store.ErrFormat) || errors.Is(err, store.ErrWrongKey) || errors.Is(err, store.ErrTampered),
			"unexpected error kind: %v", err)
	})
}

func mustHeader(t *testing.T, b []byte, lim seal.Limits) *header {
	h, err := parseHeader(b, lim)
	require.NoError(t, err)
	return h
}
