package tokenmgr

import (
	"fmt"
	"runtime/debug"

	"golang.org/x/oauth2"

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
func (c *engine) protect(where string, err *error) {
	if r := recover(); r != nil {
		*err = c.panicError(where, r)
	}
}

// panicError makes the *PanicError of a panic; also are tokens the
// panicking code was handed, which may have left service meanwhile.
func (c *engine) panicError(where string, r any, also ...*oauth2.Token) *PanicError {
	pe := &PanicError{Where: where, Stack: debug.Stack()}
	// The panic value is user data: it may quote a token or secret.
	// Not logged here: a panicking slog.Handler would panic again. The
	// error takes the path of any failure.
	red := c.redactor()
	for _, tok := range also {
		c.addToken(red, tok)
	}
	pe.Value = red.Redact(fmt.Sprint(r))
	return pe
}

// redactor knows every secret the Client holds or can learn from its
// Source.
func (c *engine) redactor() *redact.Redactor {
	r := &redact.Redactor{}
	if s, ok := c.src.(interface{ addSecrets(*redact.Redactor) }); ok {
		s.addSecrets(r)
	}
	r.Add(c.sourceSecrets(nil)...)
	for _, e := range []*entry{c.cur.Load(), c.dropped.Load(), c.saving.Load()} {
		if e != nil {
			c.addToken(r, e.tok)
		}
	}
	return r
}

// addToken makes r look for tok's secrets: its access and refresh tokens,
// ID token, and those the Source says it carries ([SecretHolder]).
func (c *engine) addToken(r *redact.Redactor, tok *oauth2.Token) {
	if tok == nil {
		return
	}
	r.Add(tok.AccessToken, tok.RefreshToken)
	if s, ok := tok.Extra("id_token").(string); ok {
		r.Add(s)
	}
	r.Add(c.sourceSecrets(tok)...)
}

// sourceSecrets asks a SecretHolder Source for tok's secrets (nil: its
// own). It is called while a panic is being turned into an error: a panic
// of its own gives no secrets rather than crash the host.
func (c *engine) sourceSecrets(tok *oauth2.Token) (secrets []string) {
	h, ok := c.src.(SecretHolder)
	if !ok {
		return nil
	}
	defer func() {
		if recover() != nil {
			secrets = nil
		}
	}()
	return h.Secrets(tok)
}
