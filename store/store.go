// Package store holds the places where tokenmgr keeps credentials between
// runs: process memory, the operating system's keyring and an encrypted file.
//
// A Store maps a credential name (the key) to opaque bytes. The bytes are an
// encoded record of the token; stores never look inside them, so a store is
// small enough to write for any backend (a secrets manager, a database).
//
// A Store that also implements Locker serialises refreshes of one credential
// across goroutines and, for the file and keyring stores, across processes:
// tokenmgr takes the lock, re-reads the store, and only asks the token
// endpoint when no other holder refreshed in the meantime.
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
	// ErrNotFound when there are none.
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
