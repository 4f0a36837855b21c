//go:build unix

package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// openWithin opens path as a file store, failing the test if that takes
// longer than a few seconds (a FIFO used to block forever).
func openWithin(t *testing.T, path string) (Store, error) {
	t.Helper()
	type res struct {
		s   Store
		err error
	}
	done := make(chan res, 1)
	go func() {
		s, err := NewEncryptedFile(path, []byte(testPass), testOpts)
		done <- res{s, err}
	}()
	select {
	case r := <-done:
		return r.s, r.err
	case <-time.After(5 * time.Second):
		require.FailNow(t, "opening did not return within 5s", path)
		return nil, nil
	}
}

func TestFileRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.enc")
	require.NoError(t, unix.Mkfifo(fifo, 0o600))
	zero := filepath.Join(dir, "zero.enc")
	require.NoError(t, os.Symlink("/dev/zero", zero))
	sub := filepath.Join(dir, "adir.enc")
	require.NoError(t, os.Mkdir(sub, 0o700))

	for _, path := range []string{fifo, zero, sub} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			start := time.Now()
			st, err := openWithin(t, path)
			require.Error(t, err)
			assert.Nil(t, st)
			assert.ErrorContains(t, err, "not a regular file")
			assert.ErrorContains(t, err, path)
			assert.Less(t, time.Since(start), time.Second, "refused before reading")
		})
	}
}

// TestFileSymlinkedPathSurvivesSave: a store path that is a symbolic link
// stays one after a Save (the write lands on the file it points to), and
// the lock files sit beside the real file.
func TestFileSymlinkedPathSurvivesSave(t *testing.T) {
	realDir, linkDir := t.TempDir(), t.TempDir()
	real := filepath.Join(realDir, "creds.enc")
	require.NoError(t, openTestFile(t, real).Save(ctx, "a", []byte("1")))
	link := filepath.Join(linkDir, "creds.enc")
	require.NoError(t, os.Symlink(real, link))

	s := openTestFile(t, link)
	require.NoError(t, s.Save(ctx, "b", []byte("2")))
	unlock, err := s.(Locker).Lock(ctx, "b")
	require.NoError(t, err)
	unlock()

	fi, err := os.Lstat(link)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSymlink, fi.Mode().Type(), "the link was replaced by a file")
	got, err := openTestFile(t, real).Load(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, "2", string(got), "the Save went to the real file")
	locks, err := filepath.Glob(filepath.Join(linkDir, "*"))
	require.NoError(t, err)
	assert.Equal(t, []string{link}, locks, "nothing but the link beside the link")
	locks, err = filepath.Glob(real + "*.lock")
	require.NoError(t, err)
	assert.NotEmpty(t, locks, "lock files beside the real file")

	// A link to a file not yet created: the first Save creates the target.
	target := filepath.Join(realDir, "later.enc")
	dangling := filepath.Join(linkDir, "later.enc")
	require.NoError(t, os.Symlink(target, dangling))
	require.NoError(t, openTestFile(t, dangling).Save(ctx, "c", []byte("3")))
	fi, err = os.Lstat(dangling)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSymlink, fi.Mode().Type())
	got, err = openTestFile(t, target).Load(ctx, "c")
	require.NoError(t, err)
	assert.Equal(t, "3", string(got))
}

// TestFileRefusesUnsafePermissions: a store file others may read, or a
// directory others may write, is refused with the chmod that fixes it, as
// ssh refuses such a private key.
func TestFileRefusesUnsafePermissions(t *testing.T) {
	base := t.TempDir()
	path := filepath.Join(base, "creds.enc")
	s := openTestFile(t, path)
	require.NoError(t, s.Save(ctx, "k", []byte("v")))

	require.NoError(t, os.Chmod(path, 0o644))
	_, err := NewEncryptedFile(path, []byte(testPass), testOpts)
	require.ErrorIs(t, err, ErrUnsafePermissions)
	assert.ErrorContains(t, err, "chmod 600 "+path)
	_, err = s.Load(ctx, "k")
	require.ErrorIs(t, err, ErrUnsafePermissions, "an open store checks on every read")
	require.ErrorIs(t, s.Save(ctx, "k", []byte("w")), ErrUnsafePermissions)
	require.NoError(t, os.Chmod(path, 0o600))
	_, err = s.Load(ctx, "k")
	require.NoError(t, err, "the chmod the message gives fixes it")

	shared := filepath.Join(base, "shared")
	require.NoError(t, os.Mkdir(shared, 0o700))
	require.NoError(t, os.Chmod(shared, 0o777))
	_, err = NewEncryptedFile(filepath.Join(shared, "new", "creds.enc"), []byte(testPass), testOpts)
	require.ErrorIs(t, err, ErrUnsafePermissions, "checked before the file exists")
	assert.ErrorContains(t, err, "chmod go-w "+shared)
	require.NoError(t, os.Chmod(shared, 0o775))
	_, err = NewEncryptedFile(filepath.Join(shared, "creds.enc"), []byte(testPass), testOpts)
	require.ErrorIs(t, err, ErrUnsafePermissions, "group-writable too")

	// A sticky world-writable directory (like /tmp) is fine above the
	// store's own directory, not as it.
	require.NoError(t, os.Chmod(shared, 0o777|os.ModeSticky))
	_, err = NewEncryptedFile(filepath.Join(shared, "creds.enc"), []byte(testPass), testOpts)
	require.ErrorIs(t, err, ErrUnsafePermissions)
	// Never "chmod go-w /tmp": other users need it; another path instead.
	assert.NotContains(t, err.Error(), "chmod")
	assert.ErrorContains(t, err, "mode 1777")
	assert.ErrorContains(t, err, "a directory of your own")
	mine := filepath.Join(shared, "mine")
	require.NoError(t, os.Mkdir(mine, 0o700))
	_, err = NewEncryptedFile(filepath.Join(mine, "creds.enc"), []byte(testPass), testOpts)
	require.NoError(t, err)
}
