package tokenmgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
)

// The engine and its Store: what a refresh reads before it asks the
// Source, and how it saves what it fetched.

// saveLate saves e, fetched by a refresh that was abandoned and returned
// at last with no newer token in service: its refresh token may be a
// rotated one, the stored one used up. The refresh gave up the store's
// lock at abandon, so saveLate takes it again (its deadline long past, on
// a new one), and saves only when the store holds nothing newer than e (a
// refresh since, by another process).
func (c *engine[T]) saveLate(e *entry[T], out *outcome) {
	if c.st == nil {
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, c.refreshTimeout)
	defer cancel()
	if l, ok := c.st.(store.Locker); ok {
		unlock, err := l.Lock(ctx, c.key)
		if err != nil {
			out.storeErr = err
			c.observeStore(ctx, "lock", err)
			c.storeLog(err, slog.LevelError, "saving the token of a refresh that returned late failed; it is in service but will not survive a restart")
			return
		}
		defer unlock()
	}
	r, err := record.Load(ctx, c.st, c.key)
	if err != nil {
		out.storeErr = err // saveNew does not write over a newer tokenmgr's record
		c.observeStore(ctx, "load", err)
	} else if r != nil && r.Obtained.After(e.obtained) {
		return // a newer refresh saved its token
	} else if err := c.foreign(r); err != nil {
		out.storeErr = err
		c.log.Error("not saving the token of a refresh that returned late over another configuration's credential", "error", err)
		return
	}
	c.saveNew(ctx, e, out)
}

// saveNew saves a freshly fetched e, unless the store holds a record of a
// newer tokenmgr; a failure is noted in out and logged.
func (c *engine[T]) saveNew(ctx context.Context, e *entry[T], out *outcome) {
	switch {
	case c.st == nil:
	case errors.Is(out.storeErr, record.ErrNewer):
		c.log.Error("not saving the new token over a record written by a newer tokenmgr; it will not survive a restart")
	case out.storeErr != nil && c.unseenForeign(ctx, out):
	default:
		c.saving.Store(e) // a Store that panics quoting it is redacted
		err := c.save(ctx, e)
		c.saving.CompareAndSwap(e, nil)
		if err != nil {
			out.storeErr = err
			c.observeStore(ctx, "save", err)
			c.storeLog(err, slog.LevelError, "saving the new token failed; it is in service but will not survive a restart")
		}
	}
}

// unseenForeign reads the store again before a save whose earlier read
// failed (a shared store that did not answer, say), which therefore never
// saw whose the record is, and reports whether the save must not happen:
// the record there is another configuration's (ErrKeyInUse, noted in out)
// or a newer tokenmgr's. When this read fails too, the save goes ahead:
// the store itself refuses to replace what it cannot open.
func (c *engine[T]) unseenForeign(ctx context.Context, out *outcome) bool {
	r, err := record.Load(ctx, c.st, c.key)
	switch {
	case errors.Is(err, record.ErrNewer):
		c.log.Error("not saving the new token over a record written by a newer tokenmgr; it will not survive a restart")
		return true
	case err != nil:
		return false
	}
	if err := c.foreign(r); err != nil {
		out.storeErr = err
		c.log.Error("not saving the new token over another configuration's credential", "error", err)
		return true
	}
	return false
}

// storeLog logs a store error at level, or at debug level when the store
// is a shared one whose server is unavailable (store.ErrUnavailable): such a
// store logs the outage once itself, and the refresh goes on without it.
func (c *engine[T]) storeLog(err error, level slog.Level, msg string) {
	if errors.Is(err, store.ErrUnavailable) {
		level = slog.LevelDebug
	}
	c.log.Log(c.ctx, level, msg, "error", err)
}

// loadStored returns the stored token when it belongs to this
// configuration, is newer than old and not yet stale; a stored (rotated)
// refresh token newer than old is passed to the source even when the
// access token is not usable: it wins over the seed.
func (c *engine[T]) loadStored(ctx context.Context, old *entry[T]) (*entry[T], error) {
	r, err := record.Load(ctx, c.st, c.key)
	if err != nil {
		return nil, fmt.Errorf("tokenmgr: %w", err)
	}
	if r == nil {
		return nil, nil
	}
	if err := c.foreign(r); err != nil {
		return nil, err
	}
	if old != nil && !r.Obtained.After(old.obtained) {
		// Not newer than the token being replaced: the same one, or an
		// older one left by a save that failed. Ours, and its refresh
		// token, are the freshest there are.
		return nil, nil
	}
	sk, ok := c.kind.(storedKind[T])
	if !ok {
		return nil, nil
	}
	tok, ok, err := sk.fromRecord(r)
	if err != nil {
		c.log.Warn("stored token is not usable; fetching a new one", "error", err)
		return nil, nil
	}
	if !ok || (old != nil && c.kind.ID(tok) == old.id) {
		// None, or the very one being replaced, saved again with a
		// rotated refresh token (see refreshLocked).
		return nil, nil
	}
	e := c.newEntry(tok, r.Obtained)
	if st, _ := c.state(e); st != stateFresh {
		return nil, nil // stale or expired: refresh now rather than soon
	}
	return e, nil
}

// foreign returns an error wrapping ErrKeyInUse when r, stored under the
// Client's key, was saved by another configuration: it is not ours to use,
// and replacing it would lose it (its refresh token above all), so the
// refresh stops before asking the Source. A record or a Source that does
// not say its configuration is taken as ours, as before fingerprints.
func (c *engine[T]) foreign(r *record.Record) error {
	if r == nil || c.fingerprint == "" || r.Source == "" || r.Source == c.fingerprint {
		return nil
	}
	ours := c.description
	if ours == "" {
		ours = "fingerprint " + c.fingerprint
	}
	return fmt.Errorf("%w: %q in %s holds %s of another configuration (%s), not this one's (%s); "+
		"nothing was overwritten: give this configuration its own key, or delete the stored credential",
		ErrKeyInUse, c.key, display.StoreName(c.st), r.Kind(), r.Configuration(), ours)
}

func (c *engine[T]) save(ctx context.Context, e *entry[T]) error {
	sk, ok := c.kind.(storedKind[T])
	if !ok {
		return nil
	}
	r := sk.record(e.tok, e.obtained)
	if r == nil {
		return nil
	}
	r.Source, r.Config = c.fingerprint, c.description
	b, err := r.Encode()
	if err != nil {
		return err
	}
	return c.st.Save(ctx, c.key, b)
}
