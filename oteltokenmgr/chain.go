package oteltokenmgr

import (
	"context"
	"time"

	"github.com/tokenmgr/tokenmgr"
)

// chain returns an Observer calling a's funcs, then b's (nil: a alone).
// b's RefreshStart gets the context a's returned, so it sees a's span.
func chain(a, b *tokenmgr.Observer) *tokenmgr.Observer {
	if b == nil {
		return a
	}
	o := *a
	if f, g := a.RefreshStart, b.RefreshStart; g != nil {
		o.RefreshStart = func(ctx context.Context, key string, r tokenmgr.RefreshReason) context.Context {
			if f != nil {
				if c := f(ctx, key, r); c != nil {
					ctx = c
				}
			}
			if c := g(ctx, key, r); c != nil {
				return c
			}
			return ctx
		}
	}
	if f, g := a.RefreshDone, b.RefreshDone; g != nil {
		o.RefreshDone = func(ctx context.Context, ev tokenmgr.RefreshEvent) {
			if f != nil {
				f(ctx, ev)
			}
			g(ctx, ev)
		}
	}
	if f, g := a.TokenRequest, b.TokenRequest; g != nil {
		o.TokenRequest = func(ctx context.Context, key string, attempt int, err error) {
			if f != nil {
				f(ctx, key, attempt, err)
			}
			g(ctx, key, attempt, err)
		}
	}
	if f, g := a.Rejected, b.Rejected; g != nil {
		o.Rejected = func(ctx context.Context, key, host, code string, replayed bool) {
			if f != nil {
				f(ctx, key, host, code, replayed)
			}
			g(ctx, key, host, code, replayed)
		}
	}
	if f, g := a.HeldOff, b.HeldOff; g != nil {
		o.HeldOff = func(ctx context.Context, key, cause, host string) {
			if f != nil {
				f(ctx, key, cause, host)
			}
			g(ctx, key, cause, host)
		}
	}
	if f, g := a.StoreError, b.StoreError; g != nil {
		o.StoreError = func(ctx context.Context, key, op string, err error) {
			if f != nil {
				f(ctx, key, op, err)
			}
			g(ctx, key, op, err)
		}
	}
	if f, g := a.StoreLocked, b.StoreLocked; g != nil {
		o.StoreLocked = func(ctx context.Context, key string, waited time.Duration) {
			if f != nil {
				f(ctx, key, waited)
			}
			g(ctx, key, waited)
		}
	}
	if f, g := a.Closed, b.Closed; g != nil {
		o.Closed = func(key string) {
			if f != nil {
				f(key)
			}
			g(key)
		}
	}
	return &o
}
