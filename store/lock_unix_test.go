//go:build unix

package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// flockFD locks path through a file descriptor of its own, as another
// process would, and returns its unlock.
func flockFD(t *testing.T, path string) func() {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	require.NoError(t, err)
	require.NoError(t, unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB))
	return func() { f.Close() }
}

// TestLockFileRemovedWhileWaiting: a waiter that gets the lock of a file
// its holder removed meanwhile (it opened the file before the removal and
// locked it after the holder let go) does not stay in beside the holder
// of the new file at that path; it waits for that one.
func TestLockFileRemovedWhileWaiting(t *testing.T) {
	if !removeLocksSupported {
		t.Skip("no lock file removal here")
	}
	path := filepath.Join(t.TempDir(), "k.lock")
	// The waiter has just got the lock of the file at path...
	fl := newFlock(path)
	ok, err := fl.TryLock()
	require.NoError(t, err)
	require.True(t, ok)
	// ...which its previous holder had removed, and another process has
	// locked the new file at path.
	require.NoError(t, os.Remove(path))
	releaseNew := flockFD(t, path)

	ctx, cancel := context.WithTimeout(context.Background(), 10*lockPollInterval)
	defer cancel()
	got, err := lockAt(ctx, fl, path)
	if err == nil {
		got.Close()
	}
	require.ErrorIs(t, err, context.DeadlineExceeded, "the waiter kept the lock of a removed file while another process holds the file at its path")

	releaseNew()
	got, err = lockAt(context.Background(), newFlock(path), path)
	require.NoError(t, err, "the waiter gets the new file's lock once it is free")
	assert.True(t, stillAt(got, path))
	got.Close()
}

// TestRemoveLocks: RemoveLocks removes a credential's lock files, waiting
// for a process that holds the lock, and leaves other credentials' alone.
func TestRemoveLocks(t *testing.T) {
	if !removeLocksSupported {
		t.Skip("no lock file removal here")
	}
	ctx := context.Background()
	st := openTestFile(t, filepath.Join(t.TempDir(), "f.enc"))
	fs := st.(*fileStore)
	for _, k := range []string{"a", "b"} {
		unlock, err := fs.Lock(ctx, k)
		require.NoError(t, err)
		unlock()
	}
	require.FileExists(t, fs.lockPath("a"))

	release := flockFD(t, fs.lockPath("a")) // another process holds a's lock
	done := make(chan error, 1)
	go func() { done <- RemoveLocks(ctx, st, "a") }()
	select {
	case err := <-done:
		require.Fail(t, "RemoveLocks did not wait for the holder", "err %v", err)
	case <-time.After(10 * lockPollInterval):
	}
	assert.FileExists(t, fs.lockPath("a"), "not removed under its holder")
	release()
	require.NoError(t, <-done)
	assert.NoFileExists(t, fs.lockPath("a"))
	assert.FileExists(t, fs.lockPath("b"))
	require.NoError(t, RemoveLocks(ctx, st, "a"), "no lock file: nothing to do")
	assert.NoFileExists(t, fs.lockPath("a"), "not created to be removed")
	require.NoError(t, RemoveLocks(ctx, NewMemory(), "a"))
}

// TestRemoveLocksKeyring: the keyring store's refresh and write lock files
// of a credential go; another credential's stay.
func TestRemoveLocksKeyring(t *testing.T) {
	if !removeLocksSupported {
		t.Skip("no lock file removal here")
	}
	ctx := context.Background()
	ks, _ := newFakeKeyringStore(t)
	require.NoError(t, ks.Save(ctx, "a", []byte("v"))) // the write lock
	require.NoError(t, ks.Save(ctx, "b", []byte("v")))
	for _, k := range []string{"a", "b"} {
		unlock, err := ks.Lock(ctx, k) // the refresh lock
		require.NoError(t, err)
		unlock()
	}
	var a []string
	for _, suffix := range lockSuffixes {
		p, err := ks.lockPath("a", suffix)
		require.NoError(t, err)
		require.FileExists(t, p)
		a = append(a, p)
	}
	dir := filepath.Dir(a[0])
	before, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.NoError(t, RemoveLocks(ctx, ks, "a"))
	for _, p := range a {
		assert.NoFileExists(t, p)
	}
	after, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, after, len(before)-2, "b's lock files stay")
}
