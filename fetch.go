package tokenmgr

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// The engine and its Source: the token requests of one refresh, with
// their retries.

// errAttemptTimeout marks a token request that ran past TokenTimeout, so
// it counts as transient while the refresh as a whole still has time.
var errAttemptTimeout = errors.New("tokenmgr: token request timed out")

// fetch asks the Source for a token, retrying transient failures with
// backoff while ctx allows when retry is set. It counts its calls to the
// Source in *attempts.
func (c *engine[T]) fetch(ctx context.Context, retry bool, attempts *int) (T, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 100 * time.Millisecond
	b.MaxInterval = 5 * time.Second
	b.MaxElapsedTime = 0
	b.Reset()
	refused := 0
	var prev error // the last attempt that ended on its own
	for attempt := 1; ; attempt++ {
		tok, err := c.fetchOnce(ctx)
		*attempts = attempt
		c.observeRequest(ctx, attempt, err)
		if err == nil {
			return tok, nil
		}
		var zero T
		if ctx.Err() != nil && prev != nil && cutShort(err) {
			// The refresh deadline cut this attempt short: the answer
			// before it (a 503, a refusal) says more than the deadline.
			// An answer that came late (a Source that takes no context)
			// is kept: it may be permanent.
			return zero, withAttempts(prev, attempt)
		}
		if !retry || !isTemporary(err) || ctx.Err() != nil {
			return zero, withAttempts(err, attempt)
		}
		prev = err
		if isRefused(err) {
			// Nothing listens at the token URL's port: a wrong port or a
			// stopped server, which the next attempts rarely find mended.
			if refused++; c.maxRefused > 0 && refused >= c.maxRefused {
				return zero, withAttempts(err, attempt)
			}
		}
		wait := b.NextBackOff()
		var te *TokenError
		if errors.As(err, &te) && te.RetryAfter > wait {
			wait = te.RetryAfter
		}
		if dl, ok := ctx.Deadline(); ok && c.now().Add(wait).After(dl) {
			return zero, withAttempts(err, attempt)
		}
		c.log.Debug("token request failed; retrying", "attempt", attempt, "wait", wait, "error", err)
		if c.onRetry != nil {
			if perr := c.emitRetry(RetryEvent{Key: c.key, Attempt: attempt, Wait: wait, Err: err}); perr != nil {
				return zero, perr
			}
		}
		// ctx, the refresh's, outlives Close by design (a request in flight
		// gets its answer); no new attempt starts after Close.
		if c.sleep(ctx, wait) != nil || c.ctx.Err() != nil {
			return zero, withAttempts(err, attempt)
		}
	}
}

// cutShort reports whether err is an attempt ended by its context rather
// than by an answer (or a panic, which is never replaced).
func cutShort(err error) bool {
	var pe *PanicError
	if errors.As(err, &pe) {
		return false
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}

func (c *engine[T]) fetchOnce(ctx context.Context) (tok T, err error) {
	var zero T
	if ck, ok := c.kind.(contextKind); !ok || ck.honoursContext() {
		actx, cancel := context.WithTimeoutCause(ctx, c.tokenTimeout, errAttemptTimeout)
		tok, err = c.callSource(actx)
		if err != nil && errors.Is(context.Cause(actx), errAttemptTimeout) && ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", errAttemptTimeout, err)
		}
		cancel()
	} else {
		tok, err = c.callSource(ctx)
	}
	var pe *PanicError
	if errors.As(err, &pe) {
		return zero, err
	}
	if err != nil {
		return zero, endpointError(err)
	}
	exp := c.kind.Expiry(tok)
	if exp.IsZero() {
		c.log.Debug("token has no expiry (expires_in absent or 0); it is served until a server rejects it")
		return tok, nil
	}
	// Sources date expiry by the wall clock; carry the lifetime over to
	// the engine's clock (the same one outside tests).
	if ck, ok := c.kind.(clockedKind[T]); ok {
		tok = ck.withExpiry(tok, c.now().Add(time.Until(exp)))
		exp = c.kind.Expiry(tok)
	}
	if !exp.After(c.now()) {
		// expires_in 0 never gets here: x/oauth2 reads it, like an absent
		// one, as no expiry.
		return zero, fmt.Errorf("%w: token expired on arrival (a negative expires_in, or the clock is far off)", ErrBadTokenResponse)
	}
	return tok, nil
}

// callSource calls the kind's Fetch, recovering a panic.
func (c *engine[T]) callSource(ctx context.Context) (tok T, err error) {
	defer c.protect("Source", &err)
	return c.kind.Fetch(ctx)
}
