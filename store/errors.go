package store

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// ErrDecrypt is wrapped by every error that means an encrypted file could
// not be opened with the key given: ErrWrongKey and ErrTampered both match
// it under errors.Is.
var ErrDecrypt = errors.New("cannot decrypt")

// ErrWrongKey is returned when the passphrase or key does not open the
// encrypted file. A modified salt or cost field in the file's header looks
// the same, so the message says so. The file is left untouched.
var ErrWrongKey = fmt.Errorf("%w: wrong passphrase or key (or the file header was modified)", ErrDecrypt)

// ErrTampered is returned when the key is right but the encrypted file's
// contents fail authentication: the file was modified or damaged after it
// was written. The file is left untouched.
var ErrTampered = fmt.Errorf("%w: file contents fail authentication (modified or damaged)", ErrDecrypt)

// ErrFormat is returned for stored data this package cannot read: an
// encrypted file that is not a tokenmgr store, is truncated or empty, was
// written by a newer format version, or asks for a key-derivation cost beyond
// the limits this package accepts; or a keyring entry tokenmgr did not write.
var ErrFormat = errors.New("unreadable format")

// ErrTooLarge is returned by Save for a value larger than MaxValueSize, and
// for an encrypted file larger than maxFileSize.
var ErrTooLarge = errors.New("too large")

// ErrKeyringUnavailable is wrapped when the operating system keyring does not
// answer: on Linux, no D-Bus session bus or no Secret Service on it. The
// message says how to get one or how to use the encrypted file instead.
var ErrKeyringUnavailable = errors.New("OS keyring unavailable")

// MaxValueSize is the largest value Save accepts in any of this package's
// stores. Token records are a few kilobytes; the limit keeps a runaway
// caller from filling the keyring or the file.
const MaxValueSize = 1 << 20

// checkKey rejects credential names a store could not keep faithfully: the
// file's JSON and D-Bus both carry only valid UTF-8, and D-Bus no NUL.
func checkKey(store fmt.Stringer, key string) error {
	if !utf8.ValidString(key) || strings.ContainsRune(key, 0) {
		return fmt.Errorf("store: %s: key %q: not valid UTF-8 text without NUL", store, key)
	}
	return nil
}

// ErrUnavailable is wrapped by the errors of a shared store (such as the
// Redis store in store/redisstore) whose server does not answer in time or
// refuses the connection. Such a store reports the outage in its own log
// once; a Client goes on without it, fetching tokens for itself and keeping
// the one in service, and shares again when the server answers.
var ErrUnavailable = errors.New("shared store unavailable")

// ErrUnsafePermissions is returned when an encrypted file can be read or
// written by other users, or its directory (or one above it) can be
// changed by them, as ssh refuses a private key in such a place. The
// message gives the chmod that fixes it.
var ErrUnsafePermissions = errors.New("unsafe permissions")
