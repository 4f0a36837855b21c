package seal

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// cheapParams is a fresh salt at a fast scrypt cost (1 MiB).
func cheapParams(t testing.TB) Params {
	t.Helper()
	p := Params{KDF: KDFScrypt, LogN: 10, R: 8, P: 1}
	_, err := rand.Read(p.Salt[:])
	require.NoError(t, err)
	return p
}

// counting returns d with its derivations counted.
func counting(d *Deriver) (*Deriver, *atomic.Int32) {
	var n atomic.Int32
	d.derive = func(p Params, secret []byte, l Labels) (*Keys, error) {
		n.Add(1)
		return Derive(p, secret, l)
	}
	return d, &n
}

// forgetProcess empties the process-wide cache, so that the next Deriver
// stands for another process.
func forgetProcess() {
	processCache.mu.Lock()
	defer processCache.mu.Unlock()
	clear(processCache.m)
}

// mapCache is an in-memory session Cache.
type mapCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

func newMapCache() *mapCache { return &mapCache{m: map[string][]byte{}} }

func (c *mapCache) Get(name string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[name]
	return bytes.Clone(v), ok
}

func (c *mapCache) Put(name string, v []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.m[name] = bytes.Clone(v)
}

// open derives with d for data sealed under p with check, and says
// whether the keys pass the check.
func open(t *testing.T, d *Deriver, p Params, check []byte) bool {
	t.Helper()
	k, err := d.Keys(p, check)
	require.NoError(t, err)
	return k.CheckMatches(check)
}

func TestDeriverDerivesOncePerParams(t *testing.T) {
	forgetProcess()
	d, n := counting(NewDeriver([]byte("pass"), labels, nil))
	p := cheapParams(t)
	want, err := Derive(p, []byte("pass"), labels)
	require.NoError(t, err)
	forgetProcess()
	var wg sync.WaitGroup
	for range 8 { // concurrent first calls
		wg.Go(func() { assert.True(t, open(t, d, p, want.Check[:])) })
	}
	wg.Wait()
	k, err := d.Keys(p, nil)
	require.NoError(t, err)
	assert.Equal(t, int32(1), n.Load(), "derived once for one salt")
	_, err = d.Keys(cheapParams(t), nil)
	require.NoError(t, err)
	assert.Equal(t, int32(2), n.Load(), "a new salt derives again")

	other, n2 := counting(NewDeriver([]byte("pass"), labels, nil))
	assert.True(t, open(t, other, p, k.Check[:]))
	assert.Equal(t, int32(0), n2.Load(), "a second store in this process opening the same file derives nothing")
	raw, n3 := counting(NewDeriver(bytes.Repeat([]byte{1}, KeySize), labels, nil))
	rp := Params{KDF: KDFRawKey}
	_, err = raw.Keys(rp, nil)
	require.NoError(t, err)
	_, err = raw.Keys(rp, nil)
	require.NoError(t, err)
	assert.Equal(t, int32(1), n3.Load())
}

func TestDeriverCacheBoundToSaltAndLabels(t *testing.T) {
	forgetProcess()
	cache := newMapCache()
	first, n1 := counting(NewDeriver([]byte("pass"), labels, cache))
	p := cheapParams(t)
	k, err := first.Keys(p, nil)
	require.NoError(t, err)
	check := k.Check[:]
	require.Equal(t, int32(1), n1.Load())
	require.Len(t, cache.m, 1)
	for _, v := range cache.m {
		assert.NotContains(t, string(v), "pass", "the passphrase is not in the cache")
	}

	forgetProcess() // another process, same passphrase: no derivation
	next, n2 := counting(NewDeriver([]byte("pass"), labels, cache))
	assert.True(t, open(t, next, p, check))
	assert.Equal(t, int32(0), n2.Load(), "the cached key is used")

	// In a process that opened the data with one passphrase, another
	// passphrase derives (and fails the check), and does not replace the
	// entry.
	wrong, n3 := counting(NewDeriver([]byte("wrong"), labels, cache))
	assert.False(t, open(t, wrong, p, check))
	assert.Equal(t, int32(1), n3.Load())
	forgetProcess()
	again, n4 := counting(NewDeriver([]byte("pass"), labels, cache))
	assert.True(t, open(t, again, p, check))
	assert.Equal(t, int32(0), n4.Load())

	// The entry is not bound to the passphrase (that would take a check
	// faster than scrypt): in a fresh process another passphrase gets the
	// cached key, as anyone reading the cache would.
	forgetProcess()
	other, n5 := counting(NewDeriver([]byte("other"), labels, cache))
	assert.True(t, open(t, other, p, check))
	assert.Equal(t, int32(0), n5.Load())

	forgetProcess() // another file (salt) or format (labels) has no entry
	newFile, n6 := counting(NewDeriver([]byte("pass"), labels, cache))
	q := cheapParams(t)
	kq, err := Derive(q, []byte("pass"), labels)
	require.NoError(t, err)
	forgetProcess()
	assert.True(t, open(t, newFile, q, kq.Check[:]))
	assert.Equal(t, int32(1), n6.Load())
	otherLabels := Labels{Payload: "x", Check: "y"}
	ko, err := Derive(p, []byte("pass"), otherLabels)
	require.NoError(t, err)
	forgetProcess()
	otherFormat, n7 := counting(NewDeriver([]byte("pass"), otherLabels, cache))
	assert.True(t, open(t, otherFormat, p, ko.Check[:]))
	assert.Equal(t, int32(1), n7.Load())
}

// TestSessionEntryHoldsNoPassphraseCheck: the session entry is the id of
// the data (a hash of the public header fields) and the keys scrypt gave,
// nothing more: no byte of it can be computed from the passphrase without
// running scrypt, and its name does not depend on the passphrase.
func TestSessionEntryHoldsNoPassphraseCheck(t *testing.T) {
	forgetProcess()
	cache := newMapCache()
	p := cheapParams(t)
	k, err := NewDeriver([]byte("pass"), labels, cache).Keys(p, nil)
	require.NoError(t, err)
	require.Len(t, cache.m, 1)
	id := cacheID(p, labels)
	want := append(append(id[:], k.Payload[:]...), k.Check[:]...)
	for name, v := range cache.m {
		assert.Equal(t, want, v, "the entry is the data's id and the derived keys only")
		assert.Equal(t, entryName(id), name)
	}

	forgetProcess() // another passphrase, same data: the same name
	other := newMapCache()
	_, err = NewDeriver([]byte("another passphrase"), labels, other).Keys(p, nil)
	require.NoError(t, err)
	for name := range other.m {
		assert.Contains(t, cache.m, name, "the entry's name does not depend on the passphrase")
	}
}

func TestDeriverFallsBackWhenCachedKeyFailsKeyCheck(t *testing.T) {
	forgetProcess()
	cache := newMapCache()
	p := cheapParams(t)
	k, err := NewDeriver([]byte("pass"), labels, nil).Keys(p, nil)
	require.NoError(t, err)
	check := k.Check[:]
	id := cacheID(p, labels)
	toSession(cache, id, &Keys{Payload: [KeySize]byte{9}, Check: [CheckSize]byte{9}}) // wrong keys

	forgetProcess()
	next, n := counting(NewDeriver([]byte("pass"), labels, cache))
	assert.True(t, open(t, next, p, check), "the key check rejects the cached keys, and deriving opens the data")
	assert.Equal(t, int32(1), n.Load())
	forgetProcess()
	again, n2 := counting(NewDeriver([]byte("pass"), labels, cache))
	assert.True(t, open(t, again, p, check))
	assert.Equal(t, int32(0), n2.Load(), "the entry was replaced by the right keys")

	otherID := cacheID(cheapParams(t), labels)
	otherID[0] = id[0] // the same slot
	var good []byte
	for _, v := range cache.m {
		good = bytes.Clone(v)
	}
	for _, v := range [][]byte{nil, {1, 2, 3}, bytes.Repeat([]byte{1}, entrySize), bytes.Repeat([]byte{1}, entrySize+1),
		append(otherID[:], good[len(id):]...)} {
		cache.Put(entryName(id), v)
		forgetProcess()
		d, n := counting(NewDeriver([]byte("pass"), labels, cache))
		assert.True(t, open(t, d, p, check), "a malformed or another data's entry is ignored")
		assert.Equal(t, int32(1), n.Load())
	}
}

// BenchmarkCacheEntryGuess is an attacker who read a session cache entry
// testing passphrase guesses against it, as guesses/s. v1 is the earlier
// entry (the keys and an HMAC-SHA256 of the passphrase under the payload
// key), rebuilt here for comparison: one HMAC per guess. v2 is today's
// entry (the keys alone): the cheapest test of a guess is scrypt at the
// data's cost (the default here, as files and Redis use it), then HKDF.
func BenchmarkCacheEntryGuess(b *testing.B) {
	p := Params{KDF: KDFScrypt, LogN: DefaultLogN, R: DefaultR, P: DefaultP, Salt: [SaltSize]byte{1}}
	k, err := Derive(p, []byte("correct horse"), labels)
	require.NoError(b, err)
	guess := []byte("wrong horse")
	b.Run("entry=v1-hmac", func(b *testing.B) {
		v1mac := func(secret []byte) []byte {
			m := hmac.New(sha256.New, k.Payload[:])
			m.Write([]byte("tokenmgr key cache v1 passphrase"))
			m.Write(secret)
			return m.Sum(nil)
		}
		stored := v1mac([]byte("correct horse"))
		for b.Loop() {
			if hmac.Equal(v1mac(guess), stored) {
				b.Fatal("guessed")
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "guesses/s")
	})
	b.Run("entry=v2-keys", func(b *testing.B) {
		for b.Loop() {
			g, err := Derive(p, guess, labels)
			if err != nil || g.Payload == k.Payload {
				b.Fatal("guessed")
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "guesses/s")
	})
}
