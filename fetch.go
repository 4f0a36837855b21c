package tokenmgr

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"golang.org/x/oauth2"
)

// The engine and its Source: the token requests of one refresh, with
// their retries.

// errAttemptTimeout marks a token request that ran past TokenTimeout, so
// it counts as transient while the refresh as a whole still has time.
var errAttemptTimeout = errors.New("tokenmgr: token request timed out")

// fetch asks the Source for a token, retrying transient failures with
// backoff while ctx allows when retry is set. It counts its calls to the
// Source in *attempts.
func (c *engine) fetch(ctx context.Context, retry bool, attempts *int) (*oauth2.Token, error) {
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
		if ctx.Err() != nil && prev != nil && cutShort(err) {
			// The refresh deadline cut this attempt short: the answer
			// before it (a 503, a refusal) says more than the deadline.
			// An answer that came late (a Source that takes no context)
			// is kept: it may be permanent.
			return nil, withAttempts(prev, attempt)
		}
		if !retry || !isTemporary(err) || ctx.Err() != nil {
			return nil, withAttempts(err, attempt)
		}
		prev = err
		if isRefused(err) {
			// Nothing listens at the token URL's port: a wrong port or a
			// stopped server, which the next attempts rarely find mended.
			if refused++; c.maxRefused > 0 && refused >= c.maxRefused {
				return nil, withAttempts(err, attempt)
			}
		}
		wait := b.NextBackOff()
		var te *TokenError
		if errors.As(err, &te) && te.RetryAfter > wait {
			wait = te.RetryAfter
		}
		if dl, ok := ctx.Deadline(); ok && c.now().Add(wait).After(dl) {
			return nil, withAttempts(err, attempt)
		}
		c.log.Debug("token request failed; retrying", "attempt", attempt, "wait", wait, "error", err)
		if c.onRetry != nil {
			if perr := c.emitRetry(RetryEvent{Key: c.key, Attempt: attempt, Wait: wait, Err: err}); perr != nil {
				return nil, perr
			}
		}
		// ctx, the refresh's, outlives Close by design (a request in flight
		// gets its answer); no new attempt starts after Close.
		if c.sleep(ctx, wait) != nil || c.ctx.Err() != nil {
			return nil, withAttempts(err, attempt)
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

func (c *engine) fetchOnce(ctx context.Context) (*oauth2.Token, error) {
	var tok *oauth2.Token
	var err error
	if cs, ok := c.src.(ContextSource); ok {
		actx, cancel := context.WithTimeoutCause(ctx, c.tokenTimeout, errAttemptTimeout)
		actx = context.WithValue(actx, oauth2.HTTPClient, c.tokenHTTP)
		tok, err = c.callSource(actx, cs.TokenContext)
		if err != nil && errors.Is(context.Cause(actx), errAttemptTimeout) && ctx.Err() == nil {
			err = fmt.Errorf("%w: %w", errAttemptTimeout, err)
		}
		cancel()
	} else {
		tok, err = c.callSource(ctx, func(context.Context) (*oauth2.Token, error) { return c.src.Token() })
	}
	var pe *PanicError
	if errors.As(err, &pe) {
		return nil, err
	}
	if err != nil {
		return nil, endpointError(err)
	}
	if err := checkToken(tok, c.header); err != nil {
		return nil, err
	}
	if tok.Expiry.IsZero() {
		c.log.Debug("token has no expiry (expires_in absent or 0); it is served until a server rejects it")
	} else {
		// Sources date expiry by the wall clock; carry the lifetime over to
		// the Client's clock (the same one outside tests).
		t2 := *tok
		t2.Expiry = c.now().Add(time.Until(tok.Expiry))
		tok = &t2
	}
	if !tok.Expiry.IsZero() && !tok.Expiry.After(c.now()) {
		// expires_in 0 never gets here: x/oauth2 reads it, like an absent
		// one, as no expiry.
		return nil, fmt.Errorf("%w: token expired on arrival (a negative expires_in, or the clock is far off)", ErrBadTokenResponse)
	}
	return tok, nil
}

// callSource calls the Source, recovering a panic.
func (c *engine) callSource(ctx context.Context, token func(context.Context) (*oauth2.Token, error)) (tok *oauth2.Token, err error) {
	defer c.protect("Source", &err)
	return token(ctx)
}
