package seal

import (
	"time"
)

// Cache keeps derived keys outside the process for a while, where the
// platform keeps secrets for a session, so that the next short-lived
// process (a `tokenmgr token` in a shell loop) does not run scrypt again.
// Implementations never write a key to disk in the clear. Get and Put are
// best effort: a Cache that cannot answer behaves as an empty one.
type Cache interface {
	// Get returns a copy of the entry under name, if present and not expired.
	Get(name string) ([]byte, bool)
	// Put stores value under name, replacing any previous entry.
	Put(name string, value []byte)
}

// DefaultCacheTTL is how long a derived key stays in the session cache
// after it was derived: long enough for a working session of shell
// commands, short enough that a forgotten terminal does not keep it
// overnight (sudo's default is 15 minutes too).
const DefaultCacheTTL = 15 * time.Minute

// SessionCache returns the platform's session cache with entries expiring
// after ttl: the kernel's user keyring on Linux (keyctl, readable only by
// this user's processes, never swapped to disk, forgotten by the kernel
// after ttl). It returns nil where there is none: elsewhere, and on Linux
// where keyctl is refused. The OS keyrings (Keychain, Credential Manager,
// Secret Service) are not used: they have no expiry, so a key cached there
// would stay until tokenmgr happened to read it again.
func SessionCache(ttl time.Duration) Cache {
	return sessionCache(ttl)
}
