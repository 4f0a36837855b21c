package seal

import (
	"bytes"
	"crypto/rand"
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
	c := processCache.(*memCache)
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
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

func TestDeriverCacheBoundToSaltLabelsAndPassphrase(t *testing.T) {
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

	forgetProcess() // a wrong passphrase does not get the cached key
	wrong, n3 := counting(NewDeriver([]byte("wrong"), labels, cache))
	assert.False(t, open(t, wrong, p, check))
	assert.Equal(t, int32(1), n3.Load())
	forgetProcess() // and did not replace the right one's entry
	again, n4 := counting(NewDeriver([]byte("pass"), labels, cache))
	assert.True(t, open(t, again, p, check))
	assert.Equal(t, int32(0), n4.Load())

	forgetProcess() // another file (salt) or format (labels) has no entry
	other, n5 := counting(NewDeriver([]byte("pass"), labels, cache))
	_, err = other.Keys(cheapParams(t), nil)
	require.NoError(t, err)
	assert.Equal(t, int32(1), n5.Load())
	otherFormat, n6 := counting(NewDeriver([]byte("pass"), Labels{Payload: "x", Check: "y"}, cache))
	_, err = otherFormat.Keys(p, nil)
	require.NoError(t, err)
	assert.Equal(t, int32(1), n6.Load())
}

func TestDeriverFallsBackWhenCachedKeyFailsKeyCheck(t *testing.T) {
	forgetProcess()
	cache := newMapCache()
	p := cheapParams(t)
	k, err := NewDeriver([]byte("pass"), labels, nil).Keys(p, nil)
	require.NoError(t, err)
	check := k.Check[:]
	// A forged entry: wrong keys with a valid MAC for the passphrase.
	forger := NewDeriver([]byte("pass"), labels, nil)
	cache.Put(cacheName(p, labels), forger.entry(&Keys{Payload: [KeySize]byte{9}, Check: [CheckSize]byte{9}}))

	forgetProcess()
	next, n := counting(NewDeriver([]byte("pass"), labels, cache))
	assert.True(t, open(t, next, p, check), "the key check rejects the cached keys, and deriving opens the data")
	assert.Equal(t, int32(1), n.Load())
	forgetProcess()
	again, n2 := counting(NewDeriver([]byte("pass"), labels, cache))
	assert.True(t, open(t, again, p, check))
	assert.Equal(t, int32(0), n2.Load(), "the entry was replaced by the right keys")

	for _, v := range [][]byte{nil, {1, 2, 3}, bytes.Repeat([]byte{1}, entrySize), bytes.Repeat([]byte{1}, entrySize+1)} {
		cache.Put(cacheName(p, labels), v)
		forgetProcess()
		d, _ := counting(NewDeriver([]byte("pass"), labels, cache))
		assert.True(t, open(t, d, p, check), "a malformed entry is ignored")
	}
}
