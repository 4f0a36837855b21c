//go:build !linux

package seal

import "time"

func sessionCache(ttl time.Duration) Cache { return osKeyringCache{ttl: ttl} }
