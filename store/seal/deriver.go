package seal

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"sync"
)

// Deriver derives the Keys of one secret (a passphrase or a raw key) for
// one format's Labels at most once per Params in a process, and for a
// passphrase also looks in a session Cache first and fills it after
// deriving, so that a short-lived process does not run scrypt each time.
// It is safe for concurrent use.
type Deriver struct {
	secret []byte
	labels Labels
	cache  Cache

	slow sync.Mutex // held while looking in caches and deriving
	mu   sync.Mutex // guards keys
	keys []derived  // most recent first, at most maxKeys

	// derive is Derive; tests count calls through it.
	derive func(Params, []byte, Labels) (*Keys, error)
}

type derived struct {
	p Params
	k *Keys
}

// maxKeys bounds the keys a Deriver keeps: a file uses one salt, a store
// of many sealed values a few.
const maxKeys = 8

// NewDeriver returns a Deriver for secret (copied). cache may be nil; it
// is only used for passphrases (KDFScrypt): a raw key needs no derivation.
func NewDeriver(secret []byte, l Labels, cache Cache) *Deriver {
	return &Deriver{secret: bytes.Clone(secret), labels: l, cache: cache, derive: Derive}
}

// Keys returns the keys for p. check is the key check stored with the data
// being opened, or nil for new data. A key found in a cache is returned
// only when it matches check; otherwise Keys derives afresh (and caches
// the result only when it matches check, so a wrong passphrase never
// replaces a right one's entry). The caller still compares the returned
// keys' check with the stored one: a mismatch then is a wrong secret.
// The caller checks p against its Limits first.
func (d *Deriver) Keys(p Params, check []byte) (*Keys, error) {
	if k := d.recent(p); k != nil {
		return k, nil // same Params and secret: deriving again gives the same keys
	}
	// One slow path at a time, so that concurrent first calls derive once.
	d.slow.Lock()
	defer d.slow.Unlock()
	if k := d.recent(p); k != nil {
		return k, nil
	}
	if p.KDF == KDFScrypt {
		name := cacheName(p, d.labels)
		for _, c := range []Cache{processCache, d.cache} {
			if c == nil {
				continue
			}
			if k := d.fromEntry(c, name); k != nil && (check == nil || k.CheckMatches(check)) {
				d.remember(p, k)
				return k, nil
			}
		}
	}
	k, err := d.derive(p, d.secret, d.labels)
	if err != nil {
		return nil, err
	}
	d.remember(p, k)
	if p.KDF == KDFScrypt && (check == nil || k.CheckMatches(check)) {
		name, entry := cacheName(p, d.labels), d.entry(k)
		processCache.Put(name, entry)
		if d.cache != nil {
			d.cache.Put(name, entry)
		}
		clear(entry)
	}
	return k, nil
}

func (d *Deriver) recent(p Params) *Keys {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, x := range d.keys {
		if x.p == p {
			return x.k
		}
	}
	return nil
}

func (d *Deriver) remember(p Params, k *Keys) {
	d.mu.Lock()
	defer d.mu.Unlock()
	keys := []derived{{p, k}}
	for _, o := range d.keys {
		if o.p != p && len(keys) < maxKeys {
			keys = append(keys, o)
		}
	}
	d.keys = keys
}

// A cache entry is the two subkeys followed by an HMAC-SHA256 of the
// passphrase under the payload key. Its name binds it to the format's
// labels, the KDF, its cost and the salt; the MAC binds it to the
// passphrase. So another file, or the same file opened with another
// passphrase, never takes a key from an entry that is not its own. The MAC
// tells nothing to anyone who does not already hold the keys.
const entrySize = KeySize + CheckSize + sha256.Size

func (d *Deriver) mac(payload []byte) []byte {
	m := hmac.New(sha256.New, payload)
	m.Write([]byte("tokenmgr key cache v1 passphrase"))
	m.Write(d.secret)
	return m.Sum(nil)
}

func (d *Deriver) entry(k *Keys) []byte {
	out := make([]byte, 0, entrySize)
	out = append(out, k.Payload[:]...)
	out = append(out, k.Check[:]...)
	return append(out, d.mac(k.Payload[:])...)
}

func (d *Deriver) fromEntry(c Cache, name string) *Keys {
	v, ok := c.Get(name)
	if !ok {
		return nil
	}
	defer clear(v)
	if len(v) != entrySize || !hmac.Equal(d.mac(v[:KeySize]), v[KeySize+CheckSize:]) {
		return nil
	}
	var k Keys
	copy(k.Payload[:], v[:KeySize])
	copy(k.Check[:], v[KeySize:KeySize+CheckSize])
	return &k
}

// cacheName names the cache entry for p under labels.
func cacheName(p Params, l Labels) string {
	h := sha256.New()
	h.Write([]byte("tokenmgr key cache v1\x00" + l.Payload + "\x00" + l.Check + "\x00"))
	h.Write([]byte{p.KDF, p.LogN, p.R, p.P})
	h.Write(p.Salt[:])
	return "tokenmgr:kdf:" + hex.EncodeToString(h.Sum(nil))[:32]
}

// processCache holds the keys derived in this process, in the same entry
// format as a session Cache, so that two stores opening one file with one
// passphrase derive once between them, with or without a session cache.
var processCache Cache = &memCache{m: make(map[string][]byte)}

// memCache is a Cache in process memory, emptied when full (a process
// opens a handful of files).
type memCache struct {
	mu sync.Mutex
	m  map[string][]byte
}

const memCacheMax = 64

func (c *memCache) Get(name string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[name]
	return bytes.Clone(v), ok
}

func (c *memCache) Put(name string, v []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= memCacheMax {
		clear(c.m)
	}
	c.m[name] = bytes.Clone(v)
}
