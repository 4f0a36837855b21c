package seal

import (
	"time"

	"golang.org/x/sys/unix"
)

// keyctlCache keeps entries as "user" keys in the user keyring (@u), with a
// timeout: the kernel forgets them after ttl, at logout of the user's last
// session, or at reboot. Keys live in kernel memory and are never swapped.
// Only the possessor and the same user may read them (permissions set
// below), as a Secret Service would allow.
type keyctlCache struct{ ttl time.Duration }

// sessionCache is the kernel keyring, or nil where keyctl is refused
// (seccomp profiles such as docker's default forbid it). There is no
// fallback to the Secret Service: it has no expiry of its own, so an
// entry (with its expiry written inside) would be deleted only when read,
// and a key derived once and never looked up again would stay stored,
// on disk in the user's login keyring, indefinitely. Without the kernel
// keyring each process derives once, as it does with the cache off.
func sessionCache(ttl time.Duration) Cache {
	if !keyctlUsable() {
		return nil
	}
	return keyctlCache{ttl: ttl}
}

// keyctlUsable probes the kernel keyring; tests replace it to stand for a
// host that refuses keyctl.
var keyctlUsable = func() bool {
	_, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_USER_KEYRING, false)
	return err == nil
}

// Permissions: possessor everything, user view/read/search; no group, no
// other.
const keyctlPerm = 0x3f000000 | 0x000b0000

func (c keyctlCache) Get(name string) ([]byte, bool) {
	id, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", name, 0)
	if err != nil {
		return nil, false
	}
	buf := make([]byte, 128)
	n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, id, buf, 0)
	if err != nil || n > len(buf) {
		clear(buf)
		return nil, false
	}
	return buf[:n], true
}

func (c keyctlCache) Put(name string, value []byte) {
	id, err := unix.AddKey("user", name, value, unix.KEY_SPEC_USER_KEYRING)
	if err != nil {
		return
	}
	secs := int(c.ttl / time.Second)
	if secs < 1 {
		secs = 1
	}
	if _, err := unix.KeyctlInt(unix.KEYCTL_SET_TIMEOUT, id, secs, 0, 0); err != nil {
		// A key without its timeout must not linger: drop it.
		_, _ = unix.KeyctlInt(unix.KEYCTL_INVALIDATE, id, 0, 0, 0)
		return
	}
	_, _ = unix.KeyctlInt(unix.KEYCTL_SETPERM, id, keyctlPerm, 0, 0)
}
