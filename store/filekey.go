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

// newEncryptedFileWithKeyring opens path with its key in ks (see
// WithKeyring).
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
