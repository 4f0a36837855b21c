package tokenmgr

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// flight returns the function a singleflight runs to replace old.
//
// The refresh itself runs in a goroutine of its own (a work), which the
// flight waits for at most until the refresh's deadline (plus
// abandonGrace, for code that honours its context to return its own
// error). A refresh that ignores its context (a Source without
// TokenContext that never returns, a Store that blocks) is then abandoned:
// the flight's callers get an error wrapping context.DeadlineExceeded, the
// next call starts a new flight (which may well succeed: a call stuck on a
// dead connection does not doom the next one), and Close returns. The
// abandoned goroutine runs on until the call returns. Once maxStuck are
// left running, new flights join the latest of them instead of starting
// another, so a Client leaves at most maxStuck behind.
//
// An abandoned refresh gives up the Store's lock at once (abandon), so
// the next one is not locked out. When its call returns at last, its
// token is put in service only if no newer one was (serve), and is then
// saved under the lock, taken again, unless the Store holds a newer
// record (saveLate); one abandoned before it asked the Source does not
// ask it (errAbandoned).
//
// The flight recovers a panic into a *PanicError: singleflight.DoChan
// would re-raise it in a new goroutine, where it would kill the program.
//
// trigger is the context of the call that started it, for an Observer.
func (c *engine[T]) flight(trigger context.Context, reason RefreshReason, old *entry[T]) func() (any, error) {
	return func() (v any, err error) {
		defer c.protect("refresh", &err)
		if cur := c.cur.Load(); c.usable(cur, old) {
			return cur, nil // a refresh that ended just before ours began
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return nil, ErrClosed
		}
		c.wg.Add(1) // Close waits for flights
		c.mu.Unlock()
		defer c.wg.Done()
		timeout, retry := c.refreshTimeout, true
		if reason == ReasonEarly {
			// The background loop does the retrying, and a refresh of a token
			// in service ends when that token expires: a caller arriving then
			// must not wait out a refresh that began minutes earlier.
			retry = false
			if !old.expireAt.IsZero() {
				timeout = max(min(timeout, old.expireAt.Sub(c.now())), time.Millisecond)
			}
		}
		var w *work[T]
		if c.stuckN.Load() >= maxStuck {
			w = c.stuck.Load() // join the latest abandoned refresh rather than leave another behind
		}
		if w == nil || w.finished() {
			w = &work[T]{done: make(chan struct{})}
			c.wg.Add(1) // Close waits for the work too, unless it is abandoned
			go c.run(w, trigger, reason, old, timeout, retry)
		}
		t := time.NewTimer(timeout + abandonGrace)
		defer t.Stop()
		select {
		case <-w.done:
		case <-t.C:
			if err := c.abandon(w, timeout); err != nil {
				return nil, err
			}
		case <-c.ctx.Done(): // Close: give the refresh a moment to see it
			t.Reset(abandonGrace)
			select {
			case <-w.done:
			case <-t.C:
				c.abandon(w, timeout)
				return nil, ErrClosed
			}
		}
		if w.err != nil {
			return nil, w.err
		}
		return w.e, nil
	}
}

// abandonGrace is how long past its deadline a refresh is waited for
// before it is abandoned.
const abandonGrace = time.Second

// maxStuck bounds the abandoned refreshes a Client leaves running.
const maxStuck = 4

// work is one refresh running in a goroutine of its own.
type work[T any] struct {
	done     chan struct{} // closed when e and err are set
	e        *entry[T]
	err      error
	released atomic.Bool // its count in Client.wg is given back: it ended, or was abandoned

	lockMu    sync.Mutex
	unlock    func() // gives up the store lock the refresh holds; nil when it holds none
	abandoned bool   // no one waits for it: it must not hold the store lock, save or publish
}

// locked records that the refresh took the store's lock, and returns the
// function that gives it up, once, whoever calls it first: the refresh
// when it ends, or abandon. A refresh abandoned meanwhile gives it up at
// once.
func (w *work[T]) locked(unlock func()) func() {
	var once sync.Once
	u := func() { once.Do(unlock) }
	w.lockMu.Lock()
	gone := w.abandoned
	if !gone {
		w.unlock = u
	}
	w.lockMu.Unlock()
	if gone {
		u()
	}
	return u
}

// abandonLock marks w abandoned and returns the function that gives up
// the store lock it holds (nil when it holds none): a refresh stuck in its
// Source must not lock the next ones out.
func (w *work[T]) abandonLock() (unlock func()) {
	w.lockMu.Lock()
	defer w.lockMu.Unlock()
	w.abandoned = true
	u := w.unlock
	w.unlock = nil
	return u
}

// unlockAbandoned gives up the store lock of an abandoned refresh. abandon
// runs it on a goroutine of its own and waits for it at most abandonGrace:
// a Store's release may wait for the very call that is stuck (one
// connection for both), and the flight's callers, and Close, must not wait
// with it. A panic in it is logged, not the program's end.
func (c *engine[T]) unlockAbandoned(unlock func()) {
	var err error
	defer func() {
		if err != nil {
			c.log.Error("releasing the store lock of an abandoned refresh panicked", "error", err)
		}
	}()
	defer c.protect("Store", &err)
	unlock()
}

// wasAbandoned reports whether abandon gave up on w.
func (w *work[T]) wasAbandoned() bool {
	w.lockMu.Lock()
	defer w.lockMu.Unlock()
	return w.abandoned
}

func (w *work[T]) finished() bool {
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// run runs a refresh for w.
func (c *engine[T]) run(w *work[T], trigger context.Context, reason RefreshReason, old *entry[T], timeout time.Duration, retry bool) {
	defer func() {
		close(w.done)
		if w.released.CompareAndSwap(false, true) {
			c.wg.Done()
			return
		}
		// It was abandoned: it no longer counts as stuck.
		c.stuck.CompareAndSwap(w, nil)
		c.stuckN.Add(-1)
	}()
	defer c.protect("refresh", &w.err)
	w.e, w.err = c.refresh(w, trigger, reason, old, timeout, retry)
}

// abandon gives up waiting for w, whose refresh ignores its deadline.
func (c *engine[T]) abandon(w *work[T], timeout time.Duration) error {
	if unlock := w.abandonLock(); unlock != nil {
		// Released before the callers hear (and Close closes a store it
		// owns) when the Store releases at once, as this module's do.
		released := make(chan struct{})
		go func() {
			defer close(released)
			c.unlockAbandoned(unlock)
		}()
		t := time.NewTimer(abandonGrace)
		select {
		case <-released:
		case <-t.C:
		}
		t.Stop()
	}
	if w.released.CompareAndSwap(false, true) {
		c.wg.Done() // Close no longer waits for it
		c.stuckN.Add(1)
		c.stuck.Store(w)
	} else if w.finished() {
		return nil // it ended just now: nothing is left behind
	} // else: a flight joined a refresh abandoned before
	err := fmt.Errorf("tokenmgr: refresh abandoned after %v: the Source or Store did not return (does it ignore its context?): %w",
		timeout, context.DeadlineExceeded)
	c.log.Error("refresh did not return by its deadline; abandoned, its goroutine is left running", "after", timeout)
	return err
}
