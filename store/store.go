// Package store holds the places where tokenmgr keeps credentials between
// runs: process memory, the operating system's keyring and an encrypted file.
//
// A [Store] maps a credential name (the key) to opaque bytes. The bytes are an
// encoded record of the token; stores never look inside them, so a store is
// small enough to write for any backend (a secrets manager, a database).
//
// A Store that also implements [Locker] serialises refreshes of one credential
// across goroutines and, for the file and keyring stores, across processes:
// tokenmgr takes the lock, re-reads the store, and only asks the token
// endpoint when no other holder refreshed in the meantime.
//
// # Choosing a store
//
// [Auto] picks the OS keyring ([NewKeyring]) when one answers and otherwise
// the encrypted file ([NewEncryptedFile]) when a passphrase is given. It
// never falls back to plain text: with neither it returns an error wrapping
// [ErrKeyringUnavailable] that names both ways out. On a headless Linux box
// that means starting a Secret Service, e.g.
//
//	dbus-run-session -- sh -c 'echo -n "$PW" | gnome-keyring-daemon --unlock --components=secrets; exec my-program'
//
// or setting TOKENMGR_STORE=file with TOKENMGR_STORE_PASSPHRASE.
//
// # Keyring
//
// Each credential is one keyring entry under the service name with the key
// as account, holding "tokenmgr:v1:i:" and the value base64-encoded. The
// Keychain and Credential Manager cap an entry at a few kilobytes (about
// 3000 bytes on macOS, 2560 on Windows) and an id_token can be larger, so
// there a value whose encoding exceeds 2000 characters is split into chunks
// of 2000 characters; a Secret Service (Linux, the BSDs) has no such cap
// but costs several D-Bus round trips per read, so there chunks are 16000
// characters. Chunks are stored under accounts
// "tokenmgr-chunk:<h>#<slot>#<i>", h being the first 16 hex digits of
// SHA-256 of the key, with a manifest "tokenmgr:v1:c:<slot>:<n>:<SHA-256 of
// the value>" under the key itself; readers accept any chunk size. Keys may
// not start with "tokenmgr-chunk:", so no credential's name can be
// another's chunk. Slots "a" and "b" alternate: a Save writes the new
// chunks, switches the manifest in one Set, then deletes the old chunks, so
// a crash leaves the old value readable and any leftover chunks are removed
// by the next Save or Delete of the key. Readers fetch the chunks a few at
// a time, verify the digest and re-read when a writer raced them.
//
// # Encrypted file
//
// All credentials live in one file, encrypted with XChaCha20-Poly1305 under
// a key derived from the passphrase with scrypt (N=2^15, r=8, p=1 by
// default; [FileOptions]) or given directly ([WithKey], [WithKeyring]).
// FORMAT.md in this directory describes the bytes: a 72-byte header (magic "TOKENMGR", version, KDF and its bounded
// parameters, salt, key check, nonce), authenticated as additional data,
// then the ciphertext of a JSON map. The salt is kept for the life of the
// file and the key derived once per process; every write uses a new nonce.
//
// A key derived from a passphrase is also kept for a while
// ([DefaultKeyCacheTTL], [FileOptions].KeyCacheTTL) where the platform keeps
// secrets for a session: the kernel's user keyring on Linux (keyctl, with a
// timeout; never on disk). Elsewhere, and where keyctl is refused, there is
// no session cache and each process derives once: the OS keyrings have no
// expiry, so a key kept there would outlive the session. The entry holds
// the keys that open that one file (bound to its salt and cost) and nothing
// that tests the passphrase faster than scrypt, so the next process opening
// the file (a command in a shell loop) skips scrypt, and any other file
// derives as before. Any process of the same user may read the entry,
// including one in another container or mount namespace sharing the
// kernel, and while it lasts it opens the file whatever passphrase is
// given. Entries share 16 slots, so opening many files never fills the
// user's kernel key quota. A negative [FileOptions].KeyCacheTTL, or
// TOKENMGR_KEY_CACHE=off for the tokenmgr command and tokenmgr.NewFromEnv,
// turns the cache off.
//
// Writes go to a temporary file in the same directory, fsynced and renamed
// over the file, then the directory is fsynced: a crash leaves the old or
// the new file. Save and Delete re-read the file under a lock file
// (path+".lock") so that processes saving different credentials never lose
// each other's updates. A file that does not decrypt ([ErrWrongKey],
// [ErrTampered]) or parse ([ErrFormat]) is reported with its name and never
// overwritten. Lock files are locked with github.com/gofrs/flock: flock(2)
// on unix (fcntl on AIX and Solaris), LockFileEx on Windows; on plan9 and
// wasm they only exclude holders within one process. Within a process,
// holders are excluded before the file lock is tried, and waiting for a
// lock always ends with the caller's context.
package store

import (
	"context"
	"errors"
)

// ErrNotFound is returned by Load when nothing is stored under the key.
var ErrNotFound = errors.New("store: credential not found")

// Store keeps credentials by name. Implementations must be safe for
// concurrent use. Save replaces what is stored under key as a whole or not at
// all: a failed Save leaves the previous value in place.
type Store interface {
	// Load returns the bytes saved under key, or an error wrapping
	// [ErrNotFound] when there are none.
	Load(ctx context.Context, key string) ([]byte, error)
	// Save stores data under key, replacing any previous value.
	Save(ctx context.Context, key string, data []byte) error
	// Delete removes key. Deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// Locker is implemented by stores that can serialise work on one key. Lock
// blocks until the lock on key is held or ctx is done, and returns a function
// that releases it. The lock is advisory: it orders cooperating holders
// (tokenmgr clients), it does not protect the data from other writers.
type Locker interface {
	Lock(ctx context.Context, key string) (unlock func(), err error)
}

// Lister is implemented by stores that can name the credentials they hold:
// the encrypted file and the memory store. The keyring and Redis stores do
// not: an OS keyring has no portable way to enumerate its entries, and
// Redis keeps a hash of each name, never the name. Keys returns the names
// sorted; it never returns a value.
type Lister interface {
	Keys(ctx context.Context) ([]string, error)
}
