// Package redisstore keeps tokenmgr credentials in Redis (or Valkey), so
// that a fleet of replicas shares one token per credential: one replica
// refreshes, the others adopt its token. 200 replicas make one token
// request per lifetime instead of 200.
//
// It is its own module, so a program that never uses Redis neither
// compiles nor downloads go-redis. Importing it registers the store for
// TOKENMGR_STORE=redis (with TOKENMGR_REDIS_URL, a single server, a
// Sentinel or a Cluster as [NewClient] reads it, and
// TOKENMGR_STORE_PASSPHRASE; the tokenmgr command imports it):
//
//	import _ "github.com/tokenmgr/tokenmgr/store/redisstore"
//
// From Go, pass any redis.UniversalClient (a single server, Sentinel or
// Cluster) to New:
//
//	st, err := redisstore.New(ctx, rdb, redisstore.Options{Passphrase: pass})
//	c, err := tokenmgr.New(tokenmgr.Config{Source: src, Store: st})
//
// # What Redis sees
//
// Every value is encrypted before it leaves the process, with the
// encrypted file's AEAD and key handling (store/seal: XChaCha20-Poly1305
// under a key derived with bounded scrypt from the passphrase, or a raw
// 32-byte key; a key check that tells a wrong key from modified data).
// For a passphrase, the salt and scrypt cost are shared by the fleet
// through a header record, created once with SET NX. Key names carry a
// tag of the credential name keyed with the fleet's key (HMAC-SHA256), not
// the name nor anything computable from a guess of it. Redis never sees a
// token, a refresh token, a secret or a credential name. FORMAT.md in this
// directory describes the bytes.
//
// A wrong passphrase or key is an error wrapping store.ErrWrongKey (from
// New when Redis answers, else from the first call after it does). Save
// replaces only a value it has authenticated with its key, as the
// encrypted file does: a value that does not open (another key,
// store.ErrWrongKey; modified, or another credential's, store.ErrTampered;
// unreadable, store.ErrFormat) is never overwritten, whatever header it
// carries, and Save returns that error. The Lua script that replaces a
// value does so only when it is byte for byte the one the writer
// authenticated: the writer passes the SHA-1 of the value it last loaded
// (and authenticated) or saved, which under a refresh lease is the one
// it replaces, so a refresh runs the script once; if the value changed
// meanwhile the script returns it for the writer to authenticate first.
// Delete (`tokenmgr logout`) removes any value under the name (which only
// the fleet's key can name).
//
// # Refresh lease
//
// Store implements store.Locker with a lease: SET <lease key> <random
// token> NX PX <Lease>. The holder renews it every Lease/3 while its
// refresh runs, and releases it with a compare-and-delete script that also
// publishes on the credential's channel. Waiters subscribe to that channel
// and try again when it speaks, or every Lease/8 (at most 200ms, with
// jitter) if it does not, until their context ends. A tokenmgr Client
// re-reads the store once it holds the lease, so the waiters adopt the
// token the holder saved. A holder that dies (kill -9, a partition) stops
// renewing: the fleet is held up for at most one Lease (10s by default).
//
// # Fencing
//
// A lease cannot stop a holder that lost it. If the holder's lease
// expires while it is still fetching (it could not renew for a whole
// Lease: partitioned from Redis, or paused), a second replica takes the
// lease and fetches too; the fleet pays one extra token request, and both
// tokens are valid. What must not happen is the first holder's late save
// replacing the second's newer token. Each lease is granted a fence, a
// number: Redis's clock (TIME, in microseconds), or one more than the
// stored value's fence when that is not lower, so the fences of one
// credential only grow even when Redis's clock steps back (an NTP step, a
// VM restored, a failover to a replica with a slower clock). Each value
// carries the fence of the lease it was saved under, inside the
// authenticated data: no one without the key can change it (such a value
// fails authentication, and is never overwritten). The save script drops
// a save whose fence is lower than the stored value's only when the
// writer no longer holds its lease (Save returns nil: in the order of the
// leases, that token was saved and replaced at once). So the value in
// Redis is always the token of the latest lease, and the Client's own rule
// (a replica adopts a stored token only when it was obtained after the
// one it holds) keeps every replica from stepping back to an older token.
// A save without a lease (Redis was unavailable when the refresh began) is
// granted a fence the same way just before it. A save is stored, or an
// error, or dropped for the token of a later lease: a stored fence more
// than a minute ahead of Redis's clock is not obeyed, and a writer
// without a lease gets an error naming Redis and its clock (a lease
// holder saves).
//
// With a rotating refresh token, the two fetches redeem the same refresh
// token: the authorization server answers one with invalid_grant or, with
// reuse detection, revokes the family. No client-side lock can prevent
// that once a holder is cut off; renewing every Lease/3 makes it need a
// whole Lease without a renewal.
//
// # Redis unavailable
//
// Every Redis call is bounded by Options.Timeout (1s). When Redis is down,
// slow or refuses our credentials, the Store logs it once (naming Redis
// and the reason), Lock gives way (a no-op release, nil error) and Load and
// Save fail at once with errors wrapping store.ErrUnavailable, which the
// Client logs at debug level: each replica fetches its own tokens and keeps
// serving the one it holds. One call a second goes through to see whether
// Redis is back; when it answers the Store logs that once and sharing
// resumes, with no restart. New does not fail when Redis is down either.
//
// # Expiry
//
// The store reads the record it is given (store/record, the Client's
// own format) for the access token's expiry: a credential without a
// refresh token expires in Redis Options.ExpiryMargin (1m) after its
// access token does (SET … PX, relative, so a skewed Redis clock does not
// matter), so a dead credential does not linger. One with a refresh token
// is kept, since the refresh token outlives the access token; `tokenmgr
// logout` (Delete) removes either for the whole fleet.
package redisstore
