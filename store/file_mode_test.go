package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestFileModesEveryWriteAndLock: the file and its lock files are 0600
// whatever the umask, on creation and on every rewrite, and the directory
// it creates is 0700.
func TestFileModesEveryWriteAndLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a", "b", "credentials.enc")
	st, err := NewEncryptedFile(path, []byte("correct horse battery staple"))
	require.NoError(t, err)
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "opening creates nothing")
	ctx := context.Background()
	require.NoError(t, st.Save(ctx, "one", []byte("v1")))
	assertFileModes(t, path)
	require.NoError(t, st.Save(ctx, "two", []byte("v2")))
	require.NoError(t, st.Delete(ctx, "one"))
	assertFileModes(t, path)
	unlock, err := st.(Locker).Lock(ctx, "two")
	require.NoError(t, err)
	unlock()
	assertFileModes(t, path)
	ai, err := os.Stat(filepath.Dir(filepath.Dir(path)))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), ai.Mode().Perm(), "intermediate directory")
}

// assertFileModes checks that the file store created its file 0600,
// its lock files 0600 and its missing directory 0700.
func assertFileModes(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "store file %s", path)
	di, err := os.Stat(filepath.Dir(path))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), di.Mode().Perm(), "directory the store created")
	locks, err := filepath.Glob(path + "*.lock")
	require.NoError(t, err)
	assert.NotEmpty(t, locks)
	for _, l := range locks {
		li, err := os.Stat(l)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o600), li.Mode().Perm(), "lock file %s", l)
	}
	ents, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	for _, e := range ents {
		assert.NotContains(t, e.Name(), ".tmp-", "temporary file left behind")
	}
}
