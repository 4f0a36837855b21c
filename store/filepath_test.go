package store_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/store"
)

func TestFilePath(t *testing.T) {
	dir, err := filepath.EvalSymlinks(t.TempDir())
	require.NoError(t, err)
	path := filepath.Join(dir, "credentials.enc")
	st, err := store.NewEncryptedFile(path, []byte("a passphrase"), store.FileOptions{ScryptLogN: 10})
	require.NoError(t, err)
	got, ok := store.FilePath(st)
	assert.True(t, ok)
	assert.Equal(t, path, got)

	_, ok = store.FilePath(store.NewMemory())
	assert.False(t, ok)
	_, ok = store.FilePath(nil)
	assert.False(t, ok)
}
