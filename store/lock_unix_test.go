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

// TestLockFileRemovedWhileWaiting: a lock file removed by its holder
// (removeLockFile) while a waiter waits on it does not let the waiter in
// beside the holder of the new file at that path.
func TestLockFileRemovedWhileWaiting(t *testing.T) {
	if !removeLocksSupported {
		t.Skip("no lock file removal here")
	}
	path := filepath.Join(t.TempDir(), "k.lock")
	releaseOld := flockFD(t, path) // another process holds the lock

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	waiting := make(chan struct{})
	type got struct {
		unlock func()
		err    error
	}
	res := make(chan got, 1)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	go func() {
		close(waiting)
		u, err := lockFile(wctx, path) // waits on the file now at path
		res <- got{u, err}
	}()
	<-waiting
	// The waiter has the old file open once it polls; wait for that.
	require.Eventually(t, func() bool { return openBy(t, path) }, 10*time.Second, 5*time.Millisecond)

	// The holder removes the file, and a third process locks a new one.
	require.NoError(t, os.Remove(path))
	releaseNew := flockFD(t, path)
	releaseOld()
	select {
	case r := <-res:
		if r.err == nil {
			r.unlock()
		}
		require.Fail(t, "the waiter got the lock of a removed file while another process holds the file at its path", "err %v", r.err)
	case <-time.After(10 * lockPollInterval):
	}
	releaseNew()
	r := <-res
	require.NoError(t, r.err, "the waiter gets the new file's lock once it is free")
	r.unlock()
}

// openBy reports whether a file descriptor of this process other than the
// test's own refers to path's file (the waiter's).
func openBy(t *testing.T, path string) bool {
	t.Helper()
	want, err := os.Stat(path)
	require.NoError(t, err)
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return true // no /proc: trust the poll interval
	}
	n := 0
	for _, e := range ents {
		if fi, err := os.Stat(filepath.Join("/proc/self/fd", e.Name())); err == nil && os.SameFile(fi, want) {
			n++
		}
	}
	return n >= 2
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
