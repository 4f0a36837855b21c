package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFileWithKeyringKey(t *testing.T) {
	ks, f := newFakeKeyringStore(t)
	path := filepath.Join(t.TempDir(), "creds.enc")
	s, err := newEncryptedFileWithKeyring(ctx, path, ks)
	require.NoError(t, err)
	assert.Equal(t, "file("+path+"; key in keyring(svc))", s.(interface{ String() string }).String())
	require.NoError(t, s.Save(ctx, "k", []byte("v")))
	assert.Equal(t, []string{"file-key:" + path}, f.users("svc"))

	s2, err := newEncryptedFileWithKeyring(ctx, path, ks)
	require.NoError(t, err)
	got, err := s2.Load(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "v", string(got))

	// The key gone from the keyring: the file is not replaced.
	before, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, ks.Delete(ctx, "file-key:"+path))
	_, err = newEncryptedFileWithKeyring(ctx, path, ks)
	assert.ErrorIs(t, err, ErrWrongKey)
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, before, after)

	// No keyring.
	f.down = errors.New("no bus")
	_, err = newEncryptedFileWithKeyring(ctx, filepath.Join(t.TempDir(), "x.enc"), ks)
	assert.ErrorIs(t, err, ErrKeyringUnavailable)
}

func TestRealFileWithKeyringKey(t *testing.T) {
	ks := realKeyringStore(t)
	path := filepath.Join(t.TempDir(), "creds.enc")
	s, err := NewEncryptedFile(path, nil, WithKeyring(context.Background(), ks.service))
	require.NoError(t, err)
	require.NoError(t, s.Save(ctx, "k", fakeJWT(8<<10)))
	s2, err := NewEncryptedFile(path, nil, WithKeyring(context.Background(), ks.service))
	require.NoError(t, err)
	got, err := s2.Load(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, fakeJWT(8<<10), got)
}
