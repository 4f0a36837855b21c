//go:build !linux

package seal

import "time"

// sessionCache: there is none outside Linux. The OS keyrings there
// (Keychain, Credential Manager) keep an entry until it is deleted, and
// nothing deletes one that is never read again (see cache_linux.go).
func sessionCache(time.Duration) Cache { return nil }
