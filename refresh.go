package tokenmgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cenkalti/backoff/v4"

	"github.com/tokenmgr/tokenmgr/store"
)

// The refresh state machine.
//
// The token in service lives in an atomic pointer: serving it is a load and
// a time compare. Every refresh of a credential goes through one
// singleflight key, so however many goroutines ask, one request reaches the
// token endpoint; with a store that implements store.Locker, the refresh
// runs under the store's lock and first re-reads the store, so however many
// processes ask, one of them refreshes and the others adopt its token.

// refreshState is where a token in service stands in its life. The
// windows that divide it (staleAt, expireAt) are computed once per token by
// windows (refreshwindow.go); the state at a moment is computed here only.
type refreshState int

const (
	stateFresh   refreshState = iota // served from memory: a load and a time compare
	stateStale                       // served at once; one background refresh starts
	stateExpired                     // not served: callers wait for one shared refresh
)

var stateNames = [...]string{"fresh", "stale", "expired"}

func (s refreshState) String() string { return stateNames[s] }

// state returns e's state now, and the time it read (zero when it needed
// none: a token without expiry is fresh until a server rejects it).
func (c *engine[T]) state(e *entry[T]) (s refreshState, now time.Time) {
	if e.staleAt.IsZero() {
		return stateFresh, now
	}
	now = c.now()
	switch {
	case now.Before(e.staleAt):
		return stateFresh, now
	case now.Before(e.expireAt):
		return stateStale, now
	}
	return stateExpired, now
}

// errBackground marks the failure of a background refresh. It makes one
// attempt (its loop does the retrying), so a caller that joined it for a
// token it needs (one expired, or rejected by a server) asks afresh, with
// retries, rather than fail on one attempt's error.
var errBackground = errors.New("tokenmgr: background refresh failed")

// errCutOff marks a background refresh that ran out of time with the
// token it was replacing.
var errCutOff = fmt.Errorf("%w: cut off at the token's expiry", errBackground)

// errAbandoned ends a refresh abandoned before it asked the Source. No
// one waits for it, and the Source was not asked: it is no failure to hold
// the next callers off with.
var errAbandoned = fmt.Errorf("tokenmgr: refresh abandoned before it asked the Source: %w", context.DeadlineExceeded)

// entry returns the token to send, refreshing as its state requires.
func (c *engine[T]) entry(ctx context.Context) (*entry[T], error) {
	e := c.cur.Load()
	if e != nil {
		switch st, now := c.state(e); st {
		case stateFresh:
			return e, nil
		case stateStale:
			c.refreshInBackground(ctx, e, now)
			return e, nil
		}
	}
	reason := ReasonExpired
	if e == nil {
		reason = ReasonInitial
		if d := c.dropped.Load(); d != nil {
			// Replace the token a server rejected, not take it back from
			// the store.
			e, reason = d, ReasonInvalid
		}
	}
	return c.refreshWait(ctx, e, reason)
}

// refreshWait waits for the shared refresh that replaces old (nil: there is
// no token yet). The caller may leave on ctx; the refresh goes on for the
// others.
func (c *engine[T]) refreshWait(ctx context.Context, old *entry[T], reason RefreshReason) (*entry[T], error) {
	for try := 0; ; try++ {
		if c.isClosed() {
			return nil, ErrClosed
		}
		if f := c.failed.Load(); f != nil && c.now().Before(f.until) {
			// A refresh failed moments ago: answer with its error rather
			// than send the endpoint one request per call.
			c.observeHeldOff(ctx, "cooldown", "")
			return nil, f.err
		}
		ch := c.sf.DoChan(c.key, c.flight(ctx, reason, old))
		select {
		case r := <-ch:
			if errors.Is(r.Err, errBackground) && try == 0 {
				continue // we joined a background refresh's one attempt, which failed: ask afresh
			}
			if r.Err != nil {
				return nil, r.Err
			}
			e := r.Val.(*entry[T])
			// A flight that started before old was published can hand back
			// old itself: join the next one, once.
			if old != nil && e.id == old.id && try == 0 {
				continue
			}
			return e, nil
		case <-ctx.Done():
			return nil, fmt.Errorf("tokenmgr: waiting for a token: %w", context.Cause(ctx))
		}
	}
}

// usable reports whether e can be served instead of refreshing to replace
// old: it is a different token and not yet stale.
func (c *engine[T]) usable(e, old *entry[T]) bool {
	if e == nil || (old != nil && e.id == old.id) {
		return false
	}
	st, _ := c.state(e)
	return st == stateFresh
}

// refresh replaces old with a new entry, within timeout. It runs in a
// work, for a flight. Its context is the Client's, not a caller's, so one
// caller giving up does not cancel the refresh the others wait for; only
// an Observer's values are taken from trigger, the caller's.
func (c *engine[T]) refresh(w *work[T], trigger context.Context, reason RefreshReason, old *entry[T], timeout time.Duration, retry bool) (*entry[T], error) {
	base := c.drain
	if c.obs != nil && c.obs.RefreshStart != nil {
		if vals := c.observeStart(trigger, reason); vals != nil {
			base = valuesCtx{Context: c.drain, vals: vals}
		}
	}
	ctx, cancel := context.WithTimeout(base, timeout)
	defer cancel()
	start := c.now()
	e, out, err := c.refreshLocked(ctx, w, reason, old, retry)
	ev := RefreshEvent{Key: c.key, Reason: reason, Stored: out.fromStore, StoreErr: out.storeErr, Err: err, Duration: c.now().Sub(start), Attempts: out.attempts}
	if out.storeErr != nil {
		c.storeErrors.Add(1)
	}
	// A background refresh whose deadline was its token's expiry (flight
	// gives it no more) and that ran out: the next caller refreshes for
	// itself. Ended by that deadline, it is no failure: one that starts
	// moments before expiry is cut off on a healthy endpoint.
	cutOff := err != nil && reason == ReasonEarly && c.ranOut(ctx, old)
	atExpiry := cutOff && timeout < c.refreshTimeout && cutShort(err)
	if out.fetchFailed && !atExpiry {
		c.fetchErrors.Add(1)
	}
	switch {
	case atExpiry:
		c.log.Debug("background refresh cut off at the token's expiry; the next caller refreshes", "error", err)
	case errors.Is(err, ErrSameToken):
		c.log.Warn("token source returned the token being replaced; keeping it in service",
			"reason", reason, "hint", "use tokenmgr.ClientCredentials or tokenmgr.RefreshToken, which always ask the endpoint")
	case err != nil:
		c.log.Warn("token refresh failed", "reason", reason, "error", err)
	default:
		ev.Expiry = c.kind.Expiry(e.tok)
		c.log.Debug("token refreshed", "reason", reason, "from_store", out.fromStore, "expiry", ev.Expiry, "took", ev.Duration)
	}
	switch {
	case cutOff:
		err = fmt.Errorf("%w: %w", errCutOff, err)
	case err != nil && reason == ReasonEarly:
		err = fmt.Errorf("%w: %w", errBackground, err)
	}
	if c.obs != nil && c.obs.RefreshDone != nil {
		c.observeDone(ctx, ev)
	}
	if (err == nil || reason != ReasonEarly) && !errors.Is(err, errAbandoned) {
		// A background attempt's failure is the background loop's to
		// retry; callers who need a token meet the endpoint themselves.
		c.noteFailure(err)
	}
	if c.onEvent != nil {
		if perr := c.emit(ev); perr != nil {
			c.log.Error("Config.OnRefresh panicked", "error", perr)
			if err == nil {
				e, err = nil, perr // the token is in service: the next call gets it
			}
		}
	}
	return e, err
}

// ranOut reports whether a refresh on ctx, replacing old, has run out of
// time: its context ended, or by the clock its deadline or old's expiry
// has passed. ctx.Err() alone is not enough: a context's deadline timer
// fires late on a loaded machine, and a Store that judges the deadline by
// the clock (redisstore does when its connection's deadline comes first)
// fails with context.DeadlineExceeded while ctx.Err() is still nil.
func (c *engine[T]) ranOut(ctx context.Context, old *entry[T]) bool {
	if ctx.Err() != nil {
		return true
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return true
	}
	return old != nil && !old.expireAt.IsZero() && !c.now().Before(old.expireAt)
}

// emit calls the OnRefresh hook, recovering a panic.
func (c *engine[T]) emit(ev RefreshEvent) (err error) {
	defer c.protect("OnRefresh", &err)
	c.onEvent(ev)
	return nil
}

// failure is a refresh that failed; until it passes, callers without a
// usable token get its error instead of starting another refresh.
type failure struct {
	err   error
	until time.Time
}

// noteFailure remembers a failed refresh that asking again soon cannot
// mend: a permanent error, for a backoff that doubles with each failure in
// a row (1s to 30s, with jitter), and a Retry-After the refresh could not
// wait out, until it passes. A transient failure is not remembered: the
// refresh already spent its retries, so the next caller may try afresh. A
// success forgets everything.
func (c *engine[T]) noteFailure(err error) {
	if err == nil {
		if c.failed.Load() != nil {
			c.failed.Store(nil)
			c.failCool.Reset()
		}
		return
	}
	if errors.Is(err, ErrSameToken) || errors.Is(err, ErrClosed) || c.ctx.Err() != nil {
		return
	}
	var te *TokenError
	isTE := errors.As(err, &te)
	if isTE && te.Temporary && te.RetryAfter == 0 {
		return
	}
	var retryAfter time.Duration
	if isTE {
		retryAfter = te.RetryAfter
	}
	now := c.now()
	d := c.failCool.Fail(now, c.jitter, retryAfter)
	c.failed.Store(&failure{err: err, until: now.Add(d)})
}

// emitRetry calls the OnRetry hook, recovering a panic.
func (c *engine[T]) emitRetry(ev RetryEvent) (err error) {
	defer c.protect("OnRetry", &err)
	c.onRetry(ev)
	return nil
}

// outcome is what a refresh did besides its result.
type outcome struct {
	fromStore bool  // the token came from the store
	storeErr  error // reading or saving the store failed; the refresh went on without it
	// fetchFailed: the token request failed (counted in Stats.FetchErrors
	// unless the refresh was cut off at its token's expiry).
	fetchFailed bool
	attempts    int // calls to the Source
}

func (c *engine[T]) refreshLocked(ctx context.Context, w *work[T], reason RefreshReason, old *entry[T], retry bool) (_ *entry[T], out outcome, err error) {
	// A panic here is the Store's (or a SetRefreshToken's); the Source's
	// is caught and named in fetchOnce.
	defer c.protect("Store", &err)
	if c.st != nil {
		if l, ok := c.st.(store.Locker); ok {
			var asked time.Time
			if c.obs != nil && c.obs.StoreLocked != nil {
				asked = time.Now()
			}
			unlock, err := l.Lock(ctx, c.key)
			if err != nil {
				c.observeStore(ctx, "lock", err)
				return nil, out, fmt.Errorf("tokenmgr: locking credential %q: %w", c.key, err)
			}
			if !asked.IsZero() {
				c.observeLocked(ctx, time.Since(asked))
			}
			// Given up by abandon if the refresh gets stuck (see flight).
			defer w.locked(unlock)()
		}
		e, err := c.loadStored(ctx, old)
		if errors.Is(err, ErrKeyInUse) {
			return nil, out, err
		}
		if err != nil {
			out.storeErr = err
			c.observeStore(ctx, "load", err)
			c.storeLog(err, slog.LevelWarn, "reading the stored token failed; fetching a new one")
		}
		if e != nil {
			e.replaced = reason == ReasonInvalid
			c.storeLoads.Add(1)
			c.serve(w, old, e)
			out.fromStore = true
			return e, out, nil
		}
	}
	if w.wasAbandoned() {
		// Given up on while it waited for the store (its lock, its
		// record): abandon gave the lock up, and a request now would run
		// outside it. The next flight asks.
		return nil, out, errAbandoned
	}
	obtained := c.now()
	tok, err := c.fetch(ctx, retry, &out.attempts)
	if err != nil {
		out.fetchFailed = true
		return nil, out, err
	}
	c.fetches.Add(1)
	e := c.newEntry(tok, obtained)
	e.replaced = reason == ReasonInvalid
	if old != nil && e.id == old.id {
		if rk, ok := c.kind.(rotatingKind[T]); ok && rk.rotated(tok, old.tok) {
			// The endpoint rotated the refresh token all the same: the
			// old one is used up, the new one must not exist only in
			// memory.
			if !w.wasAbandoned() {
				c.saveNew(ctx, e, &out)
			} else if cur := c.cur.Load(); cur == nil || cur == old {
				c.saveLate(e, &out)
			}
		}
		// Serve it on rather than loop asking for a new one.
		c.cur.CompareAndSwap(nil, old)
		return nil, out, ErrSameToken
	}
	saved := false
	if !w.wasAbandoned() {
		// Saved before it is handed out: a rotated refresh token must not
		// exist only in memory once anyone may have used it.
		c.saveNew(ctx, e, &out)
		saved = true
	}
	if c.serve(w, old, e) && !saved {
		// A refresh given up on holds the store lock no more, and a newer
		// one may have saved since: saveLate looks first.
		c.saveLate(e, &out)
	}
	return e, out, nil
}

// serve puts e, which replaces old, in service, and reports whether it
// did; unless w was abandoned and, ending late, would replace a token a
// newer refresh put in service.
func (c *engine[T]) serve(w *work[T], old, e *entry[T]) bool {
	if !w.wasAbandoned() {
		c.publish(e)
		return true
	}
	cur := c.cur.Load()
	return (cur == nil || cur == old) && c.cur.CompareAndSwap(cur, e)
}

// newEntry puts tok, obtained at obtained, in an entry with its header
// and windows.
func (c *engine[T]) newEntry(tok T, obtained time.Time) *entry[T] {
	e := &entry[T]{tok: tok, id: c.kind.ID(tok), obtained: obtained, early: tok}
	e.staleAt, e.expireAt = windows(obtained, c.kind.Expiry(tok), c.refreshBefore, c.expiryDelta, c.jitter)
	hk, ok := c.kind.(headerKind[T])
	if !ok {
		return e
	}
	e.auth = hk.header(tok)
	if !e.staleAt.IsZero() {
		// oauth2.ReuseTokenSource asks again 10s before Expiry: never
		// later than the real one for a short-lived token.
		early := e.staleAt.Add(10 * time.Second)
		if exp := c.kind.Expiry(tok); early.After(exp) {
			early = exp
		}
		e.early = hk.early(tok, early)
	}
	return e
}

func (c *engine[T]) publish(e *entry[T]) { c.cur.Store(e) }

// drop takes e out of service unless it has already been replaced.
func (c *engine[T]) drop(e *entry[T]) bool {
	if c.cur.CompareAndSwap(e, nil) {
		c.dropped.Store(e)
		c.invalidations.Add(1)
		c.log.Info("token rejected by server; dropped")
		return true
	}
	return false
}

// replace returns a token to use instead of e, which a server rejected:
// the newer token when another goroutine already replaced it, else the
// result of one shared refresh.
func (c *engine[T]) replace(ctx context.Context, e *entry[T]) (*entry[T], error) {
	c.drop(e)
	if cur := c.cur.Load(); cur != nil && cur.id != e.id {
		return cur, nil
	}
	return c.refreshWait(ctx, e, ReasonInvalid)
}

func (c *engine[T]) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// refreshInBackground starts the background loop for a stale entry unless
// one is running or a failed loop asked to wait. trigger is the context of
// the call that found e stale, for an Observer.
func (c *engine[T]) refreshInBackground(trigger context.Context, e *entry[T], now time.Time) {
	if now.UnixNano() < e.bgAfter.Load() || c.bg.Load() || !c.bg.CompareAndSwap(false, true) {
		return
	}
	// Read again now that the loop is ours: a loop ending as we looked
	// sets bgAfter before it lets go of bg, and we may have read bgAfter
	// before it did.
	if now.UnixNano() < e.bgAfter.Load() {
		c.bg.Store(false)
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		c.bg.Store(false)
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	if c.obs == nil {
		trigger = nil // not kept alive for no one
	}
	go c.backgroundLoop(trigger, e)
}

// backgroundLoop refreshes e before it expires. While attempts fail, e
// stays in service and the loop retries with jittered exponential backoff,
// each wait at most half the time left, until it succeeds, e expires, the
// error is permanent, or the Client closes.
func (c *engine[T]) backgroundLoop(trigger context.Context, e *entry[T]) {
	defer c.wg.Done()
	defer c.bg.Store(false)
	defer func() {
		// Refreshes recover their own panics (see flight); what is left is
		// a panicking slog.Handler. Stop the loop rather than the program:
		// callers refresh for themselves at expiry.
		if recover() != nil {
			e.bgAfter.Store(e.expireAt.UnixNano())
		}
	}()
	left := e.expireAt.Sub(c.now())
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = min(max(left/10, 50*time.Millisecond), 30*time.Second)
	b.RandomizationFactor = 0.5
	b.MaxInterval = time.Minute
	b.MaxElapsedTime = 0
	b.Reset()
	for {
		if st, _ := c.state(e); c.cur.Load() != e || st == stateExpired {
			return // replaced, dropped, or expired while we waited: callers take over
		}
		r := <-c.sf.DoChan(c.key, c.flight(trigger, ReasonEarly, e))
		if r.Err == nil || c.cur.Load() != e {
			return
		}
		now := c.now()
		left := e.expireAt.Sub(now)
		if !isTemporary(r.Err) && !errors.Is(r.Err, ErrSameToken) || left <= 0 {
			// Retrying cannot help before expiry; callers meet the error then.
			e.bgAfter.Store(e.expireAt.UnixNano())
			return
		}
		wait := b.NextBackOff()
		var te *TokenError
		if errors.As(r.Err, &te) && te.RetryAfter > wait {
			wait = te.RetryAfter
		}
		// At most half the time left, but never below the first interval:
		// halving toward zero would crowd attempts into the last seconds.
		wait = min(wait, max(left/2, b.InitialInterval))
		e.bgAfter.Store(now.Add(wait).UnixNano())
		c.log.Warn("background refresh failed; the current token stays in service",
			slog.Duration("retry_in", wait), slog.Duration("expires_in", left))
		if c.sleep(c.ctx, wait) != nil {
			return
		}
	}
}
