package store

import (
	"context"
	"errors"
	"fmt"
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
// Lock files are left in place: removing one while another process waits
// on it would let two holders in.
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
	fl := flock.New(path, flock.SetFlag(os.O_CREATE|os.O_RDWR), flock.SetPermissions(0o600))
	if crossProcessLocking {
		ok, err := fl.TryLockContext(ctx, lockPollInterval)
		if err == nil && !ok {
			err = ctx.Err() // TryLockContext returns false only for ctx
		}
		if err != nil {
			fl.Close()
			<-ch
			if ctxErr := ctx.Err(); ctxErr != nil && errors.Is(err, ctxErr) {
				return nil, ctxErr
			}
			return nil, fmt.Errorf("store: lock %s: %w", path, err)
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
