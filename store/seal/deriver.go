package seal

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"sync"
)

// Deriver derives the Keys of one secret (a passphrase or a raw key) for
// one format's Labels at most once per Params in a process, and for a
// passphrase also looks in a session Cache first and fills it after
// deriving, so that a short-lived process does not run scrypt each time.
// It is safe for concurrent use.
type Deriver struct {
	secret []byte
	tag    [sha256.Size]byte // passphraseTag(secret)
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
	return &Deriver{secret: bytes.Clone(secret), tag: passphraseTag(secret), labels: l, cache: cache, derive: Derive}
}

// Keys returns the keys for p. check is the key check stored with the data
// being opened, or nil for new data. A key found in a cache is returned
// only when it matches check; otherwise Keys derives afresh (and caches
// the result only when it matches check, so a wrong passphrase never
// replaces a right one's entry). The caller still compares the returned
// keys' check with the stored one: a mismatch then is a wrong secret.
// The caller checks p against its Limits first.
//
// A key from the session cache is not bound to the passphrase: binding it
// would take a check faster than scrypt, which anyone reading the cache
// could run against guesses. So while it is cached it opens the data it
// was derived for whatever passphrase this Deriver holds, unless this
// process has already opened that data with another passphrase.
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
	var id entryID
	if p.KDF == KDFScrypt {
		id = cacheID(p, d.labels)
		k, taken := processCache.get(id, d.tag)
		if k != nil && (check == nil || k.CheckMatches(check)) {
			d.remember(p, k)
			return k, nil
		}
		// A session entry is used only to open existing data (check),
		// and not when another passphrase opened it in this process:
		// the entry cannot say whose it is.
		if k == nil && !taken && check != nil && d.cache != nil {
			if k := fromSession(d.cache, id); k != nil && k.CheckMatches(check) {
				d.remember(p, k)
				processCache.put(id, d.tag, k)
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
		processCache.put(id, d.tag, k)
		if d.cache != nil {
			toSession(d.cache, id, k)
		}
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

// A session cache entry holds only what opens the data it was derived
// for: the two subkeys, after the entry's id, which names the format's
// labels, the KDF, its cost and the salt (all public, in the data's
// header). Nothing in it, nor in its name, is computable from the
// passphrase without running scrypt: an earlier format added an HMAC of
// the passphrase, which let anyone who read the entry test ~1.3 million
// guesses a second where scrypt allows ~11, for a passphrase that may also
// open other files or a Redis fleet. The price is that the entry is not
// bound to the passphrase: a process with another passphrase opening the
// same data while the key is cached gets it (it could read the entry
// anyway: the kernel keyring is readable by the same user).
//
// Entries live in sessionSlots slots, the id choosing one: opening many
// files reuses the slots rather than filling the user's kernel key quota
// (200 keys by default), at the cost of an extra derivation when two files
// in use share a slot. A slot holding another id's entry is a miss.
const (
	entrySize    = len(entryID{}) + KeySize + CheckSize
	sessionSlots = 16
)

// entryID identifies the data an entry opens.
type entryID [sha256.Size]byte

// slotPrefix starts the name of every session entry; tests use their own.
var slotPrefix = "tokenmgr:kdf-slot:"

// entryName names the session slot of id.
func entryName(id entryID) string {
	return fmt.Sprintf("%s%02d", slotPrefix, int(id[0])%sessionSlots)
}

// cacheID identifies the data sealed under p with labels.
func cacheID(p Params, l Labels) entryID {
	h := sha256.New()
	h.Write([]byte("tokenmgr key cache v2\x00" + l.Payload + "\x00" + l.Check + "\x00"))
	h.Write([]byte{p.KDF, p.LogN, p.R, p.P})
	h.Write(p.Salt[:])
	var id entryID
	h.Sum(id[:0])
	return id
}

func toSession(c Cache, id entryID, k *Keys) {
	v := make([]byte, 0, entrySize)
	v = append(v, id[:]...)
	v = append(v, k.Payload[:]...)
	v = append(v, k.Check[:]...)
	c.Put(entryName(id), v)
	clear(v)
}

func fromSession(c Cache, id entryID) *Keys {
	v, ok := c.Get(entryName(id))
	if !ok {
		return nil
	}
	defer clear(v)
	if len(v) != entrySize || !bytes.Equal(v[:len(id)], id[:]) {
		return nil
	}
	v = v[len(id):]
	var k Keys
	copy(k.Payload[:], v[:KeySize])
	copy(k.Check[:], v[KeySize:])
	return &k
}

// processCache holds the keys derived or taken from a session cache in
// this process, so that two stores opening one file with one passphrase
// derive once between them, with or without a session cache. Process
// memory holds the passphrase anyway, so its entries are bound to the
// passphrase (by a hash of it), and a process that opened data with one
// passphrase never opens it with another from a cache.
var processCache = &procCache{m: make(map[entryID]procEntry)}

type procCache struct {
	mu sync.Mutex
	m  map[entryID]procEntry
}

type procEntry struct {
	tag [sha256.Size]byte // passphraseTag of the passphrase that opened it
	k   *Keys
}

// procCacheMax bounds processCache, emptied when full (a process opens a
// handful of files).
const procCacheMax = 64

// passphraseTag stands for a passphrase in processCache.
func passphraseTag(secret []byte) (tag [sha256.Size]byte) {
	h := sha256.New()
	h.Write([]byte("tokenmgr process key cache\x00"))
	h.Write(secret)
	h.Sum(tag[:0])
	return tag
}

// get returns the keys for id opened with the passphrase of tag, or
// whether another passphrase opened id.
func (c *procCache) get(id entryID, tag [sha256.Size]byte) (k *Keys, taken bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	switch {
	case !ok:
		return nil, false
	case e.tag != tag:
		return nil, true
	}
	return e.k, false
}

func (c *procCache) put(id entryID, tag [sha256.Size]byte, k *Keys) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= procCacheMax {
		clear(c.m)
	}
	c.m[id] = procEntry{tag: tag, k: k}
}
