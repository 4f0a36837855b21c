package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestConstructorsReturnTrueNilOnError walks the failure paths of every
// exported function returning a Store: each must return a nil interface
// with its error, so that `if st != nil { st.Save(...) }` cannot panic on
// a non-nil interface holding a nil pointer.
func TestConstructorsReturnTrueNilOnError(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.enc")
	require.NoError(t, openTestFile(t, good).Save(ctx, "k", []byte("v")))
	garbage := filepath.Join(dir, "garbage.enc")
	require.NoError(t, os.WriteFile(garbage, []byte("not a store at all, just text"), 0o600))
	rawFile := filepath.Join(dir, "raw.enc")
	s, err := NewEncryptedFile(rawFile, nil, WithKey(make([]byte, rawKeySize)))
	require.NoError(t, err)
	require.NoError(t, s.Save(ctx, "k", []byte("v")))
	otherKey := make([]byte, rawKeySize)
	otherKey[0] = 1
	down := newFakeKeyring()
	down.down = errInjected

	cases := map[string]func() (Store, error){
		"NewEncryptedFile/empty passphrase": func() (Store, error) { return NewEncryptedFile(good, nil) },
		"NewEncryptedFile/empty path":       func() (Store, error) { return NewEncryptedFile("", []byte("p")) },
		"NewEncryptedFile/not a store":      func() (Store, error) { return NewEncryptedFile(garbage, []byte("p")) },
		"FileOptions/bad cost": func() (Store, error) {
			return NewEncryptedFile(good, []byte("p"), FileOptions{ScryptLogN: 30})
		},
		"FileOptions/wrong passphrase": func() (Store, error) {
			return NewEncryptedFile(good, []byte("wrong"), testOpts)
		},
		"FileOptions/not a store": func() (Store, error) {
			return NewEncryptedFile(garbage, []byte(testPass), testOpts)
		},
		"WithKey/short key": func() (Store, error) { return NewEncryptedFile(rawFile, nil, WithKey(otherKey[:16])) },
		"WithKey/wrong key": func() (Store, error) { return NewEncryptedFile(rawFile, nil, WithKey(otherKey)) },
		"WithKey/passphrase file": func() (Store, error) {
			return NewEncryptedFile(good, nil, WithKey(otherKey))
		},
		"WithKeyring/empty path": func() (Store, error) {
			return NewEncryptedFile("", nil, WithKeyring(ctx, "svc"))
		},
		"WithKeyring/key missing": func() (Store, error) {
			return newEncryptedFileWithKeyring(ctx, good, &keyringStore{service: "svc", kr: newFakeKeyring()})
		},
		"WithKeyring/keyring down": func() (Store, error) {
			return newEncryptedFileWithKeyring(ctx, filepath.Join(dir, "new.enc"), &keyringStore{service: "svc", kr: down})
		},
		"WithKeyring/file unreadable with its key": func() (Store, error) {
			kr := newFakeKeyring()
			ks := &keyringStore{service: "svc", kr: kr}
			abs, _ := filepath.Abs(garbage)
			require.NoError(t, ks.Save(ctx, "file-key:"+abs, otherKey))
			return newEncryptedFileWithKeyring(ctx, garbage, ks)
		},
		"Auto/no keyring, no passphrase": func() (Store, error) { return autoWith(ctx, down, "svc", good, nil) },
		"Auto/no keyring, file fallback wrong passphrase": func() (Store, error) {
			return autoWith(ctx, down, "svc", good, []byte("wrong"))
		},
		"Auto/no keyring, file fallback not a store": func() (Store, error) {
			return autoWith(ctx, down, "svc", garbage, []byte(testPass))
		},
		"Auto/cancelled": func() (Store, error) {
			cctx, cancel := context.WithCancel(ctx)
			cancel()
			return Auto(cctx, "svc", good, []byte(testPass))
		},
	}
	for name, open := range cases {
		t.Run(name, func(t *testing.T) {
			st, err := open()
			require.Error(t, err)
			assert.True(t, st == nil, "got a non-nil %T with the error %v", st, err)
		})
	}
}
