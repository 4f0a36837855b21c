package store

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// inProcess holds one 1-buffered channel per lock file path. flock excludes
// open file descriptions, not goroutines, and two Clients in one process must
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

// lockFile takes an exclusive lock on the file at path (created 0600 when
// missing, in a directory created 0700 when missing), in this process and,
// on unix, across processes. It waits until the lock is held or ctx is done;
// waiting starts no goroutine. The returned function releases the lock and
// may be called more than once. Lock files are left in place: removing one
// while another process waits on it would let two holders in.
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
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		<-ch
		return nil, fmt.Errorf("store: lock file: %w", err)
	}
	var timer *time.Timer
	for {
		ok, err := tryLockFile(f)
		if err != nil {
			f.Close()
			<-ch
			return nil, fmt.Errorf("store: lock %s: %w", path, err)
		}
		if ok {
			break
		}
		if timer == nil {
			timer = time.NewTimer(lockPollInterval)
			defer timer.Stop()
		} else {
			timer.Reset(lockPollInterval)
		}
		select {
		case <-timer.C:
		case <-ctx.Done():
			f.Close()
			<-ch
			return nil, ctx.Err()
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			unlockFile(f)
			f.Close()
			<-ch
		})
	}, nil
}
