package redisstore

import (
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
	"github.com/tokenmgr/tokenmgr/store/seal"
)

// Defaults for Options.
const (
	DefaultPrefix       = "tokenmgr:"
	DefaultLease        = 10 * time.Second
	DefaultTimeout      = time.Second
	DefaultExpiryMargin = time.Minute
)

// retryInterval is how often a Store whose Redis did not answer lets one
// call through to see whether it answers again; the others fail at once.
const retryInterval = time.Second

// Options configure a Store. Exactly one of Passphrase and Key is required.
type Options struct {
	// Passphrase derives the encryption key with scrypt, under a salt
	// shared by the fleet through Redis (the header record). Every replica
	// must use the same one.
	Passphrase []byte
	// Key is a random 32-byte key, used instead of a passphrase: no key
	// derivation runs. Every replica must use the same one.
	Key []byte

	// Prefix starts the name of every Redis key and channel the Store
	// uses. Default DefaultPrefix ("tokenmgr:").
	Prefix string

	// Lease is how long a refresh lock is held without being renewed: a
	// holder that dies holds the fleet up for at most this long. The
	// holder renews it every Lease/3 while its refresh runs. Default
	// DefaultLease (10s).
	Lease time.Duration

	// Timeout bounds every Redis call. Default DefaultTimeout (1s). The
	// client must honour context deadlines (redis.Options
	// ContextTimeoutEnabled, which ParseURL sets) for the bound to hold;
	// otherwise its own read and write timeouts bound each call.
	Timeout time.Duration

	// ExpiryMargin is how long after its access token expires a stored
	// credential without a refresh token is kept. Default
	// DefaultExpiryMargin (1m).
	ExpiryMargin time.Duration

	// ScryptLogN, ScryptR and ScryptP set the key-derivation cost of a
	// header this Store creates (0: the encrypted file's defaults,
	// N=2^15, r=8, p=1). A header found in Redis keeps its own cost,
	// within the limits the encrypted file accepts.
	ScryptLogN, ScryptR, ScryptP int

	// KeyCacheTTL is how long the key derived from the passphrase stays in
	// the session cache (the kernel keyring on Linux; none elsewhere;
	// never a file), so that short-lived processes such as the
	// tokenmgr command do not each run scrypt. While it lasts, a process of
	// the same user on this host opens the fleet's data with it whatever
	// passphrase it was given (see package store). 0 means 15 minutes;
	// negative turns the cache off. Within a process keys are derived once
	// either way.
	KeyCacheTTL time.Duration

	// Logger receives Redis outages and recoveries, once each. Nil uses
	// slog.Default().
	Logger *slog.Logger
}

// Store keeps credentials in Redis, encrypted, and implements
// store.Locker with a lease. It is safe for concurrent use. See the
// package doc for the guarantees.
type Store struct {
	rdb     redis.UniversalClient
	owned   bool // opened from the environment: Close closes rdb
	prefix  string
	where   string
	lease   time.Duration
	timeout time.Duration
	margin  time.Duration
	log     *slog.Logger
	rand    io.Reader
	pollCap time.Duration // longest wait between a waiter's attempts (200ms; tests raise it)

	deriver *seal.Deriver // the passphrase or raw key, and the keys derived from it
	create  seal.Params   // KDF and cost of a header this Store creates
	lim     seal.Limits

	initMu sync.Mutex           // serialises header set-up
	mu     sync.Mutex           // guards hdr, names, legacy, held and seen
	hdr    *header              // the header this Store writes under; nil until known
	names  []byte               // the key of credential-name tags, with hdr
	legacy map[string]string    // credentials Load found under a version 1 key name only → that value's digest
	held   map[string]heldLease // credential → the lease this Store holds
	// seen maps a credential to the SHA-1 (hex) of the value this Store
	// last found in Redis and authenticated (Load), or wrote (Save): the
	// digest Save's first try passes, so that replacing the value a
	// refresh has just loaded costs one script run. A digest of
	// ciphertext, no secret; one entry per credential, dropped by Delete
	// and whenever the value is missing or does not open.
	seen map[string]string

	health health

	// bg counts the releases of leases a Lock gave up on (dropTaken):
	// Close waits for them, each bounded by timeout.
	bg sync.WaitGroup
}

// New returns a Store keeping credentials in the Redis that rdb reaches.
// It refuses to start without a key (Options.Passphrase or Options.Key).
// When Redis answers, New reads the header record (creating it when
// missing) and checks the key against it: a wrong passphrase or key is an
// error wrapping store.ErrWrongKey, and nothing is written. When Redis does
// not answer, New still returns a Store, which logs the outage and checks
// the key when Redis comes back: an outage must not stop a program that
// can fetch its own tokens.
func New(ctx context.Context, rdb redis.UniversalClient, opts Options) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("redisstore: nil Redis client")
	}
	s := &Store{
		rdb:     rdb,
		prefix:  opts.Prefix,
		lease:   opts.Lease,
		timeout: opts.Timeout,
		margin:  opts.ExpiryMargin,
		log:     opts.Logger,
		rand:    rand.Reader,
		pollCap: 200 * time.Millisecond,
		lim:     seal.DefaultLimits,
		held:    make(map[string]heldLease),
		legacy:  make(map[string]string),
		seen:    make(map[string]string),
	}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.lease == 0 {
		s.lease = DefaultLease
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if s.margin == 0 {
		s.margin = DefaultExpiryMargin
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.lease < 10*time.Millisecond || s.timeout < 0 || s.margin < 0 {
		return nil, errors.New("redisstore: Lease must be at least 10ms, Timeout and ExpiryMargin not negative")
	}
	s.where = describe(rdb)
	switch {
	case len(opts.Passphrase) > 0 && len(opts.Key) > 0:
		return nil, errors.New("redisstore: both a passphrase and a key given; give one")
	case len(opts.Key) > 0:
		if len(opts.Key) != seal.KeySize {
			return nil, fmt.Errorf("redisstore: key must be %d bytes, got %d", seal.KeySize, len(opts.Key))
		}
		s.deriver = seal.NewDeriver(opts.Key, labels, nil)
		s.create = seal.Params{KDF: seal.KDFRawKey}
	case len(opts.Passphrase) > 0:
		logN, r, p := cmp0(opts.ScryptLogN, seal.DefaultLogN), cmp0(opts.ScryptR, seal.DefaultR), cmp0(opts.ScryptP, seal.DefaultP)
		if err := s.lim.Check(logN, r, p); err != nil {
			return nil, fmt.Errorf("redisstore: options: %v", err)
		}
		var cache seal.Cache
		switch {
		case opts.KeyCacheTTL == 0:
			cache = seal.SessionCache(seal.DefaultCacheTTL)
		case opts.KeyCacheTTL > 0:
			cache = seal.SessionCache(opts.KeyCacheTTL)
		}
		s.deriver = seal.NewDeriver(opts.Passphrase, labels, cache)
		s.create = seal.Params{KDF: seal.KDFScrypt, LogN: byte(logN), R: byte(r), P: byte(p)}
	default:
		return nil, errors.New("redisstore: no passphrase or key: values are encrypted before they reach Redis, and every replica needs the same key")
	}
	s.health.log = s.log
	s.health.name = s.String()
	if _, _, err := s.header(ctx); err != nil && !errors.Is(err, store.ErrUnavailable) {
		return nil, err
	}
	return s, nil
}

func cmp0(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// String names the store without any secret: where Redis is (a server's
// address, a cluster's seed nodes, or Sentinel) and the key prefix.
func (s *Store) String() string {
	return fmt.Sprintf("%s (prefix %q)", s.where, s.prefix)
}

// describe says where rdb goes, for String: a server's address, a
// cluster's seed nodes, or Sentinel (go-redis names a Sentinel-backed
// client's address "FailoverClient").
func describe(rdb redis.UniversalClient) string {
	switch c := rdb.(type) {
	case *redis.Client:
		if a := c.Options().Addr; a != "FailoverClient" {
			return "Redis at " + a
		}
		return "Redis via Sentinel"
	case *redis.ClusterClient:
		return "Redis Cluster at " + strings.Join(c.Options().Addrs, ", ")
	}
	return "Redis"
}

// Close waits for the release of any lease a Lock gave up on (at most one
// Timeout), then closes the Redis client when the Store opened it (from
// the environment); a client passed to New is the caller's to close.
func (s *Store) Close() error {
	s.bg.Wait() // a lease release in flight gets out before the client goes
	if s.owned {
		return s.rdb.Close()
	}
	return nil
}

func (s *Store) headerKey() string { return s.prefix + "header" }

// Keys of one credential share a hash tag, so they live in one Redis
// Cluster slot. The tag is keyed (nameTag): the header must be known
// (Store.header) before they are named.
func (s *Store) valueKey(name string) string { return s.prefix + "{" + s.tag(name) + "}:value" }
func (s *Store) leaseKey(name string) string { return s.prefix + "{" + s.tag(name) + "}:lease" }
func (s *Store) channel(name string) string  { return s.prefix + "{" + s.tag(name) + "}:released" }

// legacyKey is where format version 1 kept the value of name.
func (s *Store) legacyKey(name string) string { return s.prefix + "{" + legacyTag(name) + "}:value" }

// tag returns name's tag under the fleet's key.
func (s *Store) tag(name string) string {
	s.mu.Lock()
	key := s.names
	s.mu.Unlock()
	if key == nil {
		panic("redisstore: a key named before the header is known")
	}
	return nameTag(key, name)
}

// keysFor returns the keys for p (check: the key check stored with the
// data, nil for new data), deriving them at most once per process, and for
// a passphrase looking in the session cache first. p has been checked
// against s.lim.
func (s *Store) keysFor(p seal.Params, check []byte) (*seal.Keys, error) {
	if p.KDF != s.create.KDF {
		kind := map[byte]string{seal.KDFScrypt: "passphrase", seal.KDFRawKey: "raw key"}
		return nil, fmt.Errorf("%w: written with a %s, this store has a %s", store.ErrWrongKey, kind[p.KDF], kind[s.create.KDF])
	}
	return s.deriver.Keys(p, check)
}

// header returns the header this Store writes under and its keys, reading
// the fleet's header record (or creating it) the first time.
func (s *Store) header(ctx context.Context) (*header, *seal.Keys, error) {
	s.mu.Lock()
	h := s.hdr
	s.mu.Unlock()
	if h != nil {
		k, err := s.keysFor(h.params, h.check[:])
		return h, k, err
	}
	s.initMu.Lock()
	defer s.initMu.Unlock()
	s.mu.Lock()
	h = s.hdr
	s.mu.Unlock()
	if h != nil {
		k, err := s.keysFor(h.params, h.check[:])
		return h, k, err
	}
	for try := 0; ; try++ {
		var b []byte
		err := s.do(ctx, "read the header record", func(ctx context.Context) error {
			var err error
			b, err = s.rdb.Get(ctx, s.headerKey()).Bytes()
			return err
		})
		if errors.Is(err, redis.Nil) {
			if try == 3 {
				return nil, nil, fmt.Errorf("redisstore: %s: header record %s keeps disappearing", s, s.headerKey())
			}
			if err := s.recoverHeader(ctx); err != nil {
				return nil, nil, err
			}
			continue // read back what won: ours, or another replica's
		}
		if err != nil {
			return nil, nil, err
		}
		h, err := parseHeader(b, s.lim)
		if err == nil && len(b) != headerSize {
			err = fmt.Errorf("%w: header record of %d bytes, not %d", store.ErrFormat, len(b), headerSize)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("redisstore: %s: header record %s: %w", s, s.headerKey(), err)
		}
		k, err := s.keysFor(h.params, h.check[:])
		if err != nil {
			return nil, nil, fmt.Errorf("redisstore: %s: %w", s, err)
		}
		if !k.CheckMatches(h.check[:]) {
			return nil, nil, fmt.Errorf("redisstore: %s: %w: the header record %s was made with another passphrase or key; every replica must use the same one",
				s, store.ErrWrongKey, s.headerKey())
		}
		names, err := namesKey(k)
		if err != nil {
			return nil, nil, fmt.Errorf("redisstore: %s: %w", s, err)
		}
		s.mu.Lock()
		s.hdr, s.names = h, names
		s.mu.Unlock()
		return h, k, nil
	}
}

// recoverHeader puts back a lost header record (SET NX): the header of a
// value in Redis that opens with this Store's key, so that replicas
// started now keep the fleet's salt, and with it the key names, and find
// the values; when there are only values of another key, it refuses
// (store.ErrWrongKey); when there are none, it makes a new one
// (createHeader). It looks at up to 100 value keys (SCAN, on every master
// of a Cluster).
func (s *Store) recoverHeader(ctx context.Context) error {
	var found *header
	foreign := false // a value written with another key
	looked := 0
	look := func(ctx context.Context, c redis.Cmdable) error {
		// MATCH filters each page after SCAN has taken it from the whole
		// keyspace: in a Redis shared with other applications a page
		// seldom holds a value of ours, so scan on to the end (within
		// the call's timeout) or to 100 values.
		var keys []string
		for cursor := uint64(0); ; {
			page, next, err := c.Scan(ctx, cursor, globEscape(s.prefix)+"{*}:value", 1000).Result()
			if err != nil {
				return err
			}
			keys = append(keys, page...)
			if cursor = next; cursor == 0 || len(keys)+looked >= 100 {
				break
			}
		}
		for _, key := range keys {
			looked++
			b, err := c.GetRange(ctx, key, 0, headerSize-1).Bytes()
			if err != nil {
				continue
			}
			h, err := parseHeader(b, s.lim)
			if err != nil {
				continue
			}
			if k, err := s.keysFor(h.params, h.check[:]); err == nil && k.CheckMatches(h.check[:]) {
				found = h
				return nil
			}
			foreign = true
		}
		return nil
	}
	err := s.do(ctx, "look for the fleet's salt in its values", func(ctx context.Context) error {
		if cc, ok := s.rdb.(*redis.ClusterClient); ok {
			var mu sync.Mutex
			return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
				mu.Lock()
				defer mu.Unlock()
				if found != nil {
					return nil
				}
				return look(ctx, c)
			})
		}
		return look(ctx, s.rdb)
	})
	if err != nil {
		return err
	}
	switch {
	case found == nil && foreign:
		// Without the header record, a replica with another key would
		// make its own and never find the fleet's values (their names
		// are keyed): the same refusal as with the record.
		return fmt.Errorf("redisstore: %s: %w: the header record %s is missing and the values in Redis were written with another passphrase or key; every replica must use the same one",
			s, store.ErrWrongKey, s.headerKey())
	case found == nil:
		return s.createHeader(ctx)
	}
	rec := found.raw
	rec[offVersion] = recVersion
	s.log.Info("the header record was missing; put back the one the stored values were written under", "store", s.String())
	return s.do(ctx, "restore the header record", func(ctx context.Context) error {
		return s.rdb.SetNX(ctx, s.headerKey(), rec[:], 0).Err()
	})
}

// globEscape escapes the glob characters of a SCAN MATCH pattern.
func globEscape(p string) string {
	var b strings.Builder
	for _, r := range p {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// createHeader writes a new header record unless one exists (SET NX).
func (s *Store) createHeader(ctx context.Context) error {
	p := s.create
	var err error
	if p.Salt, err = randomSalt(); err != nil {
		return err
	}
	k, err := s.keysFor(p, nil)
	if err != nil {
		return fmt.Errorf("redisstore: %s: %w", s, err)
	}
	h := newHeader(p, k)
	return s.do(ctx, "create the header record", func(ctx context.Context) error {
		return s.rdb.SetNX(ctx, s.headerKey(), h.raw[:], 0).Err()
	})
}

// Load returns the credential stored under name, decrypted. A value that
// fails authentication is an error wrapping store.ErrWrongKey or
// store.ErrTampered; Redis not answering, one wrapping store.ErrUnavailable.
func (s *Store) Load(ctx context.Context, name string) ([]byte, error) {
	if _, _, err := s.header(ctx); err != nil {
		return nil, err
	}
	b, err := s.get(ctx, name, s.valueKey(name))
	legacy := false
	if errors.Is(err, redis.Nil) {
		// Not under its name: perhaps under format version 1's, read
		// once and then saved under its name (see Save).
		b, err = s.get(ctx, name, s.legacyKey(name))
		legacy = err == nil
	}
	if errors.Is(err, redis.Nil) {
		s.setSeen(name, "")
		return nil, fmt.Errorf("redisstore: %s: credential %q: %w", s, name, store.ErrNotFound)
	}
	if err != nil {
		if errors.Is(err, store.ErrFormat) {
			s.setSeen(name, "")
		}
		return nil, err
	}
	plain, err := openValue(b, name, s.lim, s.keysFor)
	if err != nil {
		s.setSeen(name, "")
		return nil, fmt.Errorf("redisstore: %s: credential %q: %w", s, name, err)
	}
	if legacy {
		s.setSeen(name, "") // nothing under its name
		s.mu.Lock()
		s.legacy[name] = digest(b)
		s.mu.Unlock()
		return plain, nil
	}
	s.setSeen(name, digest(b))
	return plain, nil
}

// get reads the value of name at key, but never more than one byte past the
// largest value Load accepts, whoever wrote it: GETRANGE, one command, so
// the bound and the read are one atomic step. A value over the bound is
// an error naming its size (STRLEN, asked then), wrapping store.ErrFormat;
// a missing one redis.Nil (EXISTS tells it from an empty one).
func (s *Store) get(ctx context.Context, name, key string) ([]byte, error) {
	var b []byte
	err := s.do(ctx, "load", func(ctx context.Context) error {
		var err error
		b, err = s.rdb.GetRange(ctx, key, 0, maxValue).Bytes()
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(b) > 0 && len(b) <= maxValue {
		return b, nil
	}
	if len(b) == 0 {
		// GETRANGE answers "" for a missing value and an empty one.
		var n int64
		err := s.do(ctx, "load", func(ctx context.Context) error {
			var err error
			n, err = s.rdb.Exists(ctx, key).Result()
			return err
		})
		switch {
		case err != nil:
			return nil, err
		case n == 0:
			return nil, redis.Nil
		}
		return nil, fmt.Errorf("redisstore: %s: credential %q: %w: the value is empty", s, name, store.ErrFormat)
	}
	n := int64(len(b)) // at least; STRLEN tells the size, for the error
	_ = s.do(ctx, "load", func(ctx context.Context) error {
		l, err := s.rdb.StrLen(ctx, key).Result()
		n = max(n, l)
		return err
	})
	return nil, fmt.Errorf("redisstore: %s: credential %q: %w: value of %d bytes, more than %d; not read", s, name, store.ErrFormat, n, maxValue)
}

// digest is the SHA-1 of a stored value in hex, as the save script's
// redis.sha1hex computes it.
func digest(b []byte) string {
	sum := sha1.Sum(b)
	return hex.EncodeToString(sum[:])
}

// setSeen records d as the digest of the value under name that this Store
// last authenticated; "" forgets it.
func (s *Store) setSeen(name, d string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d == "" {
		delete(s.seen, name)
	} else {
		s.seen[name] = d
	}
}

// lastSeen returns the digest setSeen recorded for name, or "".
func (s *Store) lastSeen(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[name]
}

// saveScript replaces a value only when there is none, or when the value
// there is byte for byte one the writer has already read and
// authenticated with its key (ARGV[3], the SHA-1 of that value in hex).
// Any other value it returns, writing nothing: the writer authenticates
// it and either refuses to save (a value it cannot open is never
// replaced) or runs the script again with that value's digest. On its
// first try the writer passes the digest of the value it last loaded or
// saved (Store.seen): a refresh loads the value under its lease just
// before it saves, so the script normally runs once. Redis holds no key,
// so authentication cannot happen in the script; comparing the whole
// value makes the check and the replacement one atomic step.
//
// Once the digest matches, the fence of the value there is one the writer
// authenticated (from version 2 on it is in the additional data; a
// version 1 value's is not, and is not compared). When it is higher than
// the writer's: a writer that still holds its lease saves all the same
// (no lease was granted after one still held, so that value is not a
// later lease's); otherwise the save is dropped, since the value there
// was saved under a lease granted after the writer's (leases are granted
// fences above the stored one's, see fenceLua): the writer's lease ran
// out while it fetched, and its token is older. A stored fence more than
// ARGV[5] µs ahead of Redis's clock is no later lease's either: the
// script reports it instead of obeying it.
//
//	KEYS[1] value key, KEYS[2] lease key
//	ARGV[1] new value, ARGV[2] TTL in ms (0: none),
//	ARGV[3] SHA-1 (hex) of the value the writer authenticated ("" none),
//	ARGV[4] the writer's fence, ARGV[5] the largest skew allowed, in µs,
//	ARGV[6] the writer's lease token ("" none), ARGV[7] the largest value
//	Load accepts (maxValue)
//
// It returns {1, ""} when saved, {2, ""} when dropped for a newer fence,
// {3, how far ahead in µs} for a fence from the future, {4, its size}
// for a value there larger than Load accepts (not sent, not replaced:
// no replica reads more than maxValue of a value, whoever wrote it),
// {0, value} when the value there is not the one the writer authenticated.
var saveScript = redis.NewScript(`
local n = redis.call('STRLEN', KEYS[1])
if n > tonumber(ARGV[7]) then
  return {4, tostring(n)}
end
local cur = redis.call('GET', KEYS[1])
if cur then
  if redis.sha1hex(cur) ~= ARGV[3] then
    return {0, cur}
  end
  if string.byte(cur, 9) >= 2 then
    local stored = tonumber(string.sub(cur, 49, 64))
    if stored > tonumber(ARGV[4]) and (ARGV[6] == '' or redis.call('GET', KEYS[2]) ~= ARGV[6]) then
      local t = redis.call('TIME')
      local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
      if stored > now + tonumber(ARGV[5]) then
        return {3, string.format('%.0f', stored - now)}
      end
      return {2, ''}
    end
  end
end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return {1, ''}
`)

// maxFenceSkew is how far ahead of Redis's clock a stored fence may be
// and still be obeyed by the save script: beyond it, Redis's clock
// stepped back (an NTP step, a VM restored, a failover to a replica with
// a slower clock), and the save reports it.
const maxFenceSkew = time.Minute

// Save encrypts data and stores it under name. A credential without a
// refresh token expires on its own ExpiryMargin after its access token
// does (see the package doc). Save replaces only a value it has
// authenticated with its key (its own, or the same key's under another
// salt): a value there that does not open is never overwritten, and the
// error wraps store.ErrWrongKey (written with another key),
// store.ErrTampered (modified, or another credential's) or store.ErrFormat
// (unreadable), as the encrypted file's does. Delete removes such a value.
func (s *Store) Save(ctx context.Context, name string, data []byte) error {
	if len(data) > store.MaxValueSize {
		return fmt.Errorf("redisstore: %s: credential %q: %w: %d bytes, the limit is %d", s, name, store.ErrTooLarge, len(data), store.MaxValueSize)
	}
	h, k, err := s.header(ctx)
	if err != nil {
		return err
	}
	l := s.holding(name)
	fence := l.fence
	if fence == "" {
		// No lease (Redis did not answer Lock, or the caller took none):
		// a fence from Redis, above the stored value's.
		if fence, err = s.nextFence(ctx, name); err != nil {
			return err
		}
	}
	val, err := sealValue(h, k, name, fence, data, s.rand)
	if err != nil {
		return fmt.Errorf("redisstore: %s: %w", s, err)
	}
	ttl := s.ttl(data)
	// The value this Store last loaded (and authenticated) or saved: under
	// a refresh lease, the one this save replaces, unless another replica
	// saved since. Otherwise the script returns what is there to vet.
	vetted := s.lastSeen(name)
	for try := 0; try < 3; try++ {
		var res []any
		err := s.do(ctx, "save", func(ctx context.Context) error {
			var err error
			res, err = saveScript.Run(ctx, s.rdb, []string{s.valueKey(name), s.leaseKey(name)},
				val, ttl.Milliseconds(), vetted, fence, maxFenceSkew.Microseconds(), l.token, maxValue).Slice()
			return err
		})
		if err != nil {
			return err
		}
		if len(res) != 2 {
			return fmt.Errorf("redisstore: %s: save script answered %d values", s, len(res))
		}
		switch n, _ := res[0].(int64); n {
		case 1:
			s.setSeen(name, digest(val))
			s.shareHeader(ctx, h)
			s.dropLegacy(ctx, name)
			return nil
		case 2:
			// A replica that took the lease after ours saved a newer
			// token: in the order of the leases, ours was saved and then
			// replaced at once.
			s.setSeen(name, "")
			s.log.Debug("a newer token from another replica is in Redis; not replacing it", "store", s.String(), "credential", name)
			return nil
		case 3:
			ahead, _ := res[1].(string)
			us, _ := strconv.ParseInt(ahead, 10, 64)
			s.setSeen(name, "")
			return fmt.Errorf("redisstore: %s: credential %q: not saved: the value there carries a fence %v ahead of Redis's clock (more than %v): "+
				"Redis's clock stepped back (an NTP step, a VM restored, a failover to a replica with a slower clock), "+
				"and this save holds no lease (it ran out, or none was taken) to be ordered after that value; the next save under a lease replaces it",
				s, name, (time.Duration(us) * time.Microsecond).Round(time.Millisecond), maxFenceSkew)
		case 4:
			size, _ := res[1].(string)
			s.setSeen(name, "")
			return fmt.Errorf("redisstore: %s: credential %q: the value there is unreadable; not overwritten (tokenmgr logout deletes it): %w: value of %s bytes, more than %d",
				s, name, store.ErrFormat, size, maxValue)
		}
		cur, _ := res[1].(string)
		if err := s.vet(name, []byte(cur)); err != nil {
			s.setSeen(name, "")
			return err
		}
		// Ours (or our key's under another salt, when Redis lost the
		// header record): replace it if it is still there.
		vetted = digest([]byte(cur))
	}
	return fmt.Errorf("redisstore: %s: credential %q: changed under us three times; not saved", s, name)
}

// vet authenticates the value b found under name before Save replaces it:
// nil when it opens with this Store's key. Otherwise the error says the
// value was not overwritten and wraps what openValue found.
func (s *Store) vet(name string, b []byte) error {
	plain, err := openValue(b, name, s.lim, s.keysFor)
	clear(plain)
	var why string
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrWrongKey):
		why = "the value there was written with another passphrase or key"
	case errors.Is(err, store.ErrTampered):
		why = "the value there fails authentication (modified, damaged, or another credential's)"
	default:
		why = "the value there is unreadable"
	}
	return fmt.Errorf("redisstore: %s: credential %q: %s; not overwritten (tokenmgr logout deletes it): %w", s, name, why, err)
}

// shareHeader puts h back as the header record when Redis lost it (a
// restart without persistence), so replicas starting now share its salt.
func (s *Store) shareHeader(ctx context.Context, h *header) {
	_ = s.do(ctx, "restore the header record", func(ctx context.Context) error {
		return s.rdb.SetNX(ctx, s.headerKey(), h.raw[:], 0).Err()
	})
}

// heldLease is a refresh lease this Store holds: its fence, which its
// saves carry, and its token, by which the save script knows it is still
// held.
type heldLease struct{ fence, token string }

// holding returns the lease this Store holds on name, or a zero heldLease.
func (s *Store) holding(name string) heldLease {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.held[name]
}

// ttl is how long a stored record is kept: until its access token expires
// plus the margin, for a record without a refresh token; for ever (0)
// otherwise, since a refresh token outlives its access token.
func (s *Store) ttl(data []byte) time.Duration {
	r, err := record.Decode(data)
	if err != nil || r.RefreshToken != "" || r.Expiry.IsZero() {
		return 0
	}
	return max(time.Until(r.Expiry)+s.margin, time.Second)
}

// dropLegacyScript deletes KEYS[1] only while it holds the value whose
// SHA-1 (hex) is ARGV[1].
var dropLegacyScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and redis.sha1hex(v) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// dropLegacy deletes the version 1 key of name once its value is saved
// under its keyed name, when Load found it there, and only while it holds
// the value Load read: during a rolling upgrade a version 1 replica may
// have saved a rotated refresh token there since, its only copy.
func (s *Store) dropLegacy(ctx context.Context, name string) {
	s.mu.Lock()
	was := s.legacy[name]
	delete(s.legacy, name)
	s.mu.Unlock()
	if was != "" {
		_ = s.do(ctx, "delete the value under its version 1 key name", func(ctx context.Context) error {
			return dropLegacyScript.Run(ctx, s.rdb, []string{s.legacyKey(name)}, was).Err()
		})
	}
}

// Delete removes the credential stored under name, for every replica
// (under a version 1 key name too).
func (s *Store) Delete(ctx context.Context, name string) error {
	s.setSeen(name, "")
	if _, _, err := s.header(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.legacy, name)
	s.mu.Unlock()
	// Two commands: the two keys are in different Cluster slots.
	return s.do(ctx, "delete", func(ctx context.Context) error {
		if err := s.rdb.Del(ctx, s.valueKey(name)).Err(); err != nil {
			return err
		}
		return s.rdb.Del(ctx, s.legacyKey(name)).Err()
	})
}

// do runs one Redis call bounded by the timeout and keeps the health
// state. redis.Nil passes through. A caller's ctx ending is its own error,
// and an ACL refusal (NOPERM) an error of its own; any other failure wraps
// store.ErrUnavailable.
func (s *Store) do(ctx context.Context, what string, f func(context.Context) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.health.allow(); err != nil {
		return fmt.Errorf("redisstore: %s: %s: %w (%v)", s, what, store.ErrUnavailable, err)
	}
	cctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	err := f(cctx)
	switch {
	case err == nil || errors.Is(err, redis.Nil):
		s.health.up()
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		// The caller's deadline, reached by the connection's deadline a
		// moment before the context noticed: not Redis's fault.
		return context.DeadlineExceeded
	}
	if redis.HasErrorPrefix(err, "NOPERM") {
		// An answer: the ACL user may not run this command (a script's
		// EVALSHA, PUBLISH). Redis is up, and the next call is refused
		// too: a misconfiguration to report, not an outage to ride out.
		return fmt.Errorf("redisstore: %s: %s: %w", s, what, err)
	}
	if cctx.Err() != nil {
		err = fmt.Errorf("no answer within %v", s.timeout)
	}
	s.health.down(err)
	return fmt.Errorf("redisstore: %s: %s: %w (%v)", s, what, store.ErrUnavailable, err)
}

// health remembers whether Redis answers, so that an outage is logged
// once, calls fail at once while it lasts (one call a second goes through
// to see whether Redis is back) and the recovery is logged once.
type health struct {
	log  *slog.Logger
	name string

	mu      sync.Mutex
	isDown  bool
	err     error
	retryAt time.Time
}

func (h *health) allow() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.isDown {
		return nil
	}
	if now := time.Now(); now.After(h.retryAt) {
		h.retryAt = now.Add(retryInterval) // this call is the probe
		return nil
	}
	return h.err
}

func (h *health) up() {
	h.mu.Lock()
	was := h.isDown
	h.isDown, h.err = false, nil
	h.mu.Unlock()
	if was {
		h.log.Info("Redis answers again; replicas share tokens again", "store", h.name)
	}
}

func (h *health) down(err error) {
	h.mu.Lock()
	was := h.isDown
	h.isDown, h.err, h.retryAt = true, err, time.Now().Add(retryInterval)
	h.mu.Unlock()
	if !was {
		h.log.Warn("Redis unavailable; each replica fetches its own tokens and keeps the one it holds until Redis answers",
			"store", h.name, "error", err)
	}
}
