package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/gofrs/flock"
)

// inProcess holds one 1-buffered channel per lock file path. File locks
// exclude open file descriptions (flock) or whole processes (fcntl, on AIX
// and Solaris), not goroutines, and two Clients in one process must
// exclude each other before they get to the file; the channel also lets a
// waiter give up when its context ends.
var inProcess struct {
	mu    sync.Mutex
	locks map[string]chan struct{}
}

func inProcessLock(path string) chan struct{} {
	inProcess.mu.Lock()
	defer inProcess.mu.Unlock()
	if inProcess.locks == nil {
		inProcess.locks = make(map[string]chan struct{})
	}
	ch, ok := inProcess.locks[path]
	if !ok {
		ch = make(chan struct{}, 1)
		inProcess.locks[path] = ch
	}
	return ch
}

// lockPollInterval bounds how long a waiter sleeps between non-blocking
// attempts on a lock file held by another process.
const lockPollInterval = 20 * time.Millisecond

// crossProcessLocking tells whether lockFile excludes other processes:
// github.com/gofrs/flock locks files on unix (flock(2), or fcntl on AIX and
// Solaris) and Windows (LockFileEx); elsewhere (plan9, wasm) locks only
// exclude holders in this process, so processes sharing a store there may
// both refresh a token, and concurrent Saves may lose one update.
var crossProcessLocking = runtime.GOOS != "plan9" && runtime.GOOS != "js" && runtime.GOOS != "wasip1"

// lockFile takes an exclusive lock on the file at path (created 0600 when
// missing, in a directory created 0700 when missing), in this process and
// across processes. It waits until the lock is held or ctx is done. The
// returned function releases the lock and may be called more than once.
//
// A lock file may be removed, but only by a holder of its lock
// (removeLockFile): a waiter that then gets the lock of the removed file
// sees that path no longer names it and locks the file at path afresh, so
// two holders never meet on a removed and a new file.
func lockFile(ctx context.Context, path string) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("store: lock directory: %w", err)
	}
	ch := inProcessLock(path)
	select {
	case ch <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	fl := newFlock(path)
	if crossProcessLocking {
		var err error
		if fl, err = lockAt(ctx, fl, path); err != nil {
			<-ch
			return nil, err
		}
	} else if err := touch(path); err != nil {
		<-ch
		return nil, fmt.Errorf("store: lock file: %w", err)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = fl.Close() // unlocks and closes
			<-ch
		})
	}, nil
}

// touch creates the lock file where no file locking exists, so that lock
// files look the same on every platform.
func touch(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	return f.Close()
}

func newFlock(path string) *flock.Flock {
	return flock.New(path, flock.SetFlag(os.O_CREATE|os.O_RDWR), flock.SetPermissions(0o600))
}

// lockAt locks fl, made for path, and returns the lock held on the file
// path names then. A holder may remove the file (removeLockFile) between
// the waiter's opening it and getting its lock: the waiter then holds the
// lock of a file no longer at path, beside whoever locked the new one, so
// it drops that lock and locks the file at path.
func lockAt(ctx context.Context, fl *flock.Flock, path string) (*flock.Flock, error) {
	for {
		ok, err := fl.TryLockContext(ctx, lockPollInterval)
		if err == nil && !ok {
			err = ctx.Err() // TryLockContext returns false only for ctx
		}
		if err != nil {
			fl.Close()
			if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
				return nil, ctxErr
			}
			return nil, fmt.Errorf("store: lock %s: %w", path, err)
		}
		if stillAt(fl, path) {
			return fl, nil
		}
		fl.Close()
		fl = newFlock(path)
	}
}

// stillAt reports whether path still names the file fl has locked.
func stillAt(fl *flock.Flock, path string) bool {
	locked, err := fl.Stat()
	if err != nil {
		return false
	}
	now, err := os.Stat(path)
	return err == nil && os.SameFile(locked, now)
}

// removeLocksSupported: a lock file can be removed while locked (unix).
// Windows refuses to delete a file another process has open.
var removeLocksSupported = crossProcessLocking && runtime.GOOS != "windows"

// removeLockFile removes the lock file at path, holding its lock while it
// does (see lockFile). A missing file is not an error.
func removeLockFile(ctx context.Context, path string) error {
	if !removeLocksSupported {
		return nil
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return nil // do not create it to remove it
	}
	unlock, err := lockFile(ctx, path)
	if err != nil {
		return err
	}
	defer unlock()
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("store: removing lock file: %w", err)
	}
	return nil
}

// RemoveLocks removes the lock files st keeps for the credential key (the
// encrypted file's and the keyring's, one or two per credential ever
// used), for "tokenmgr logout". It takes each lock first, so it waits for
// a process holding it (until ctx ends) and never lets two holders in;
// call it without holding key's lock. Other stores, and platforms where an
// open file cannot be removed (Windows), keep theirs: it returns nil.
func RemoveLocks(ctx context.Context, st Store, key string) error {
	var paths []string
	switch s := st.(type) {
	case *fileStore:
		paths = []string{s.lockPath(key)}
	case *keyringStore:
		for _, suffix := range lockSuffixes {
			p, err := s.lockPath(key, suffix)
			if err != nil {
				return err
			}
			paths = append(paths, p)
		}
	}
	for _, p := range paths {
		if err := removeLockFile(ctx, p); err != nil {
			return err
		}
	}
	return nil
}
