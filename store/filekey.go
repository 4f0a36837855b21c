package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// NewEncryptedFileWithKeyring is an encrypted file whose random 32-byte key
// is kept in the OS keyring (service, account "file-key:<absolute path>")
// instead of being derived from a passphrase: for keyrings too small or too
// slow for many large entries, with the file beside the program's other
// state. Opening is instant (no key derivation).
//
// The first call for a path that has no file yet creates the key; later
// calls, from any process, read it. If the file exists but its key is not in
// the keyring the error wraps ErrWrongKey and the file is left alone. A
// keyring that does not answer gives an error wrapping ErrKeyringUnavailable.
func NewEncryptedFileWithKeyring(ctx context.Context, path, service string) (Store, error) {
	return newEncryptedFileWithKeyring(ctx, path, newOSKeyringStore(service))
}

func newEncryptedFileWithKeyring(ctx context.Context, path string, ks *keyringStore) (Store, error) {
	if path == "" {
		return nil, errors.New("store: encrypted file: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: encrypted file %s: %w", path, err)
	}
	account := "file-key:" + abs
	// Two processes creating the file at once must agree on one key.
	unlock, err := ks.Lock(ctx, account)
	if err != nil {
		return nil, err
	}
	defer unlock()
	key, err := ks.Load(ctx, account)
	switch {
	case errors.Is(err, ErrNotFound):
		if _, serr := os.Stat(abs); !errors.Is(serr, fs.ErrNotExist) {
			return nil, fmt.Errorf("store: encrypted file %s: %w: its key is not in %s (account %q)", abs, ErrWrongKey, ks, account)
		}
		key = make([]byte, rawKeySize)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := ks.Save(ctx, account, key); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case len(key) != rawKeySize:
		return nil, fmt.Errorf("store: encrypted file %s: %w: the key in %s (account %q) is not %d bytes", abs, ErrFormat, ks, account, rawKeySize)
	}
	defer clear(key)
	return openRawKeyFile(abs, key, "; key in "+ks.String())
}
