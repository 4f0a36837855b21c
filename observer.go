package tokenmgr

import (
	"context"
	"time"
)

// Observer receives what a Client does, for metrics and traces, as
// net/http/httptrace.ClientTrace receives what a request does: package
// oteltokenmgr fills one in with OpenTelemetry instruments. Every field
// is optional. A request that is not rejected calls none of them, so an
// Observer costs nothing on the path of a token in service.
//
// The funcs are called from the goroutine doing the work: they must not
// block, nor call the Client. A panic in one is logged (redacted, as a
// [PanicError]) and otherwise ignored. No argument holds a token or
// secret: an error is one the Client returns, whose message quotes none.
type Observer struct {
	// RefreshStart is called when a refresh begins, with the context of
	// the call that started it: the Token call or request that found no
	// usable token, so that a span can be its child; or, for a background
	// refresh (ReasonEarly), the request that found the token stale, so
	// that a span can link to it. The refresh's token requests and store
	// calls, and the funcs below for this refresh, get a context carrying
	// the values of the one it returns (nil: none); the refresh's deadline
	// and cancellation stay its own.
	RefreshStart func(ctx context.Context, key string, reason RefreshReason) context.Context

	// RefreshDone is called when the refresh ends, with the event
	// [Config.OnRefresh] gets.
	RefreshDone func(ctx context.Context, ev RefreshEvent)

	// TokenRequest is called after each call to the Source (a request to
	// the token endpoint; to STS for package awscreds), counted from 1 in
	// a refresh. err is nil on success; else errors.As finds a
	// *[TokenError] in it when the endpoint answered or no answer came.
	TokenRequest func(ctx context.Context, key string, attempt int, err error)

	// Rejected is called when a server rejects the token (its answer
	// means an invalid, expired or revoked token; see the package doc),
	// with the request's context, host ("host:port", lower-case), the
	// error code it answered ("InvalidClientTokenId", "invalid_token";
	// empty for a bare 401) and whether the request is sent again with a
	// fresh token.
	Rejected func(ctx context.Context, key, host, code string, replayed bool)

	// HeldOff is called when a call is answered without the refresh it
	// would have made: cause "cooldown" when a refresh failed moments ago
	// and its error is returned again; "damping" when host keeps rejecting
	// fresh tokens and its rejection is returned as it came.
	HeldOff func(ctx context.Context, key, cause, host string)

	// StoreLocked is called when a refresh has taken the Store's lock (a
	// [store.Locker]: a file lock, a Redis lease), with how long it waited
	// for it: a long wait is another process refreshing for all of them,
	// or stuck.
	StoreLocked func(ctx context.Context, key string, waited time.Duration)

	// StoreError is called when the Store fails: op is "lock", "load" or
	// "save". A refresh goes on without a Store that cannot be read or
	// written; one whose lock fails fails.
	StoreError func(ctx context.Context, key, op string, err error)

	// Closed is called once, when the Client is closed: it has no token
	// in service from then on (a gauge of its time left stops).
	Closed func(key string)
}

// valuesCtx is a refresh's context: the Client's cancellation and the
// refresh's deadline (Context), with the values of the context
// Observer.RefreshStart returned (vals), such as a span. Context's own
// values come first: the context package finds its parent cancelCtx
// through Value, so a context derived from this one needs no goroutine.
type valuesCtx struct {
	context.Context
	vals context.Context
}

func (c valuesCtx) Value(key any) any {
	if v := c.Context.Value(key); v != nil {
		return v
	}
	return c.vals.Value(key)
}

// observePanic logs a panic in an Observer func. Defer it directly.
func (c *engine[T]) observePanic(what string) {
	if r := recover(); r != nil {
		c.log.Error("Config.Observer panicked", "func", what, "error", c.panicError("Observer."+what, r))
	}
}

// observeStart calls Observer.RefreshStart with trigger, the context of the
// call that started the refresh, and returns the context to take the
// refresh's values from (nil: none).
func (c *engine[T]) observeStart(trigger context.Context, reason RefreshReason) (vals context.Context) {
	if trigger == nil {
		trigger = context.Background()
	}
	vals = trigger
	defer c.observePanic("RefreshStart")
	return c.obs.RefreshStart(trigger, c.key, reason)
}

func (c *engine[T]) observeDone(ctx context.Context, ev RefreshEvent) {
	defer c.observePanic("RefreshDone")
	c.obs.RefreshDone(ctx, ev)
}

func (c *engine[T]) observeRequest(ctx context.Context, attempt int, err error) {
	if c.obs == nil || c.obs.TokenRequest == nil {
		return
	}
	defer c.observePanic("TokenRequest")
	c.obs.TokenRequest(ctx, c.key, attempt, err)
}

func (c *engine[T]) observeRejected(ctx context.Context, host, code string, replayed bool) {
	if c.obs == nil || c.obs.Rejected == nil {
		return
	}
	defer c.observePanic("Rejected")
	c.obs.Rejected(ctx, c.key, host, code, replayed)
}

func (c *engine[T]) observeHeldOff(ctx context.Context, cause, host string) {
	if c.obs == nil || c.obs.HeldOff == nil {
		return
	}
	defer c.observePanic("HeldOff")
	c.obs.HeldOff(ctx, c.key, cause, host)
}

func (c *engine[T]) observeStore(ctx context.Context, op string, err error) {
	if c.obs == nil || c.obs.StoreError == nil {
		return
	}
	defer c.observePanic("StoreError")
	c.obs.StoreError(ctx, c.key, op, err)
}

func (c *engine[T]) observeLocked(ctx context.Context, waited time.Duration) {
	defer c.observePanic("StoreLocked")
	c.obs.StoreLocked(ctx, c.key, waited)
}

func (c *engine[T]) observeClosed() {
	defer c.observePanic("Closed")
	c.obs.Closed(c.key)
}
