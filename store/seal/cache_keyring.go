package seal

import (
	"encoding/base64"
	"encoding/binary"
	"time"

	"github.com/zalando/go-keyring"
)

// osKeyringCache keeps entries in the OS keyring (Keychain, Credential
// Manager, Secret Service) under the service keyCacheService, each with its
// expiry, since these keyrings have no timeouts of their own. An expired
// entry is deleted when found. Every call is bounded by keyringCacheTimeout:
// a keyring waiting on an unlock prompt must not hold up a command that
// would otherwise run scrypt and go on.
type osKeyringCache struct{ ttl time.Duration }

const (
	keyCacheService     = "tokenmgr-key-cache"
	keyringCacheTimeout = 2 * time.Second
)

// bounded runs f, giving up after keyringCacheTimeout (f then finishes in
// the background; its result is dropped).
func bounded(f func()) bool {
	done := make(chan struct{})
	go func() { f(); close(done) }()
	t := time.NewTimer(keyringCacheTimeout)
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}

func (c osKeyringCache) Get(name string) ([]byte, bool) {
	var s string
	var err error
	if !bounded(func() { s, err = keyring.Get(keyCacheService, name) }) || err != nil {
		return nil, false
	}
	v, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(v) < 8 {
		return nil, false
	}
	if time.Now().Unix() >= int64(binary.BigEndian.Uint64(v)) {
		bounded(func() { _ = keyring.Delete(keyCacheService, name) })
		clear(v)
		return nil, false
	}
	return v[8:], true
}

func (c osKeyringCache) Put(name string, value []byte) {
	v := binary.BigEndian.AppendUint64(nil, uint64(time.Now().Add(c.ttl).Unix()))
	v = append(v, value...)
	s := base64.StdEncoding.EncodeToString(v)
	clear(v)
	bounded(func() { _ = keyring.Set(keyCacheService, name, s) })
}
