package tokenmgr

import (
	"fmt"
	"runtime/debug"

	"github.com/tokenmgr/tokenmgr/redact"
)

// PanicError is a panic in code the Client ran on a caller's behalf: a
// [Config.Source], a [store.Store], [Config.OnRefresh] or [Config.Attach]
// (or, from [Env.OpenStore], a [RegisterStore] opener).
// The Client recovers it and returns it as an error to every caller that
// waited for that refresh (or request), instead of letting it kill the
// program: golang.org/x/sync/singleflight would re-raise it in a goroutine
// of its own, where no caller's recover reaches. The Client stays usable;
// a refresh that panicked counts as a failed one (see the package doc on
// failure backoff).
//
// Value is the panic value as text, with every secret the Client knows
// (its tokens, including one being saved, with their refresh tokens, ID
// tokens and what a [SecretHolder] Source names, and the client secret and
// refresh token of its Source) replaced by [redact.Redacted]. Stack is the stack of the goroutine that
// panicked, which holds code locations and no data.
type PanicError struct {
	Where string // what panicked: "Source", "Store", "OnRefresh", "OnRetry", "Attach", "refresh" or "Observer.<func>" (logged)
	Value string
	Stack []byte
}

// Error names what panicked and the panic value, then the stack.
func (e *PanicError) Error() string {
	return fmt.Sprintf("tokenmgr: panic in %s: %s\n\n%s", e.Where, e.Value, e.Stack)
}

// protect recovers a panic into *err as a *PanicError. Defer it directly
// (recover only works in the deferred function itself):
//
//	defer c.protect("Source", &err)
func (c *engine[T]) protect(where string, err *error) {
	if r := recover(); r != nil {
		*err = c.panicError(where, r)
	}
}

// panicError makes the *PanicError of a panic; also are tokens the
// panicking code was handed, which may have left service meanwhile.
func (c *engine[T]) panicError(where string, r any, also ...T) *PanicError {
	pe := &PanicError{Where: where, Stack: debug.Stack()}
	// The panic value is user data: it may quote a token or secret.
	// Not logged here: a panicking slog.Handler would panic again. The
	// error takes the path of any failure.
	red := c.redactor()
	if sk, ok := c.kind.(secretKind[T]); ok {
		for _, tok := range also {
			sk.secrets(red, tok, true)
		}
	}
	pe.Value = red.Redact(fmt.Sprint(r))
	return pe
}

// redactor knows every secret the engine holds or can learn from its
// kind.
func (c *engine[T]) redactor() *redact.Redactor {
	r := &redact.Redactor{}
	sk, ok := c.kind.(secretKind[T])
	if !ok {
		return r
	}
	var zero T
	sk.secrets(r, zero, false)
	for _, e := range []*entry[T]{c.cur.Load(), c.dropped.Load(), c.saving.Load()} {
		if e != nil {
			sk.secrets(r, e.tok, true)
		}
	}
	return r
}
