package tokenmgr

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/redact"
	"github.com/tokenmgr/tokenmgr/store/record"
)

// kind is what the engine needs to know of the credentials of type T it
// keeps: how to get a new one, how to tell two apart and when one
// expires. Everything else (the windows, one refresh at a time, the
// failure cooldown, the store's lock and re-read, compare-and-swap
// invalidation) is the engine's, the same for every kind.
//
// A kind may also implement the optional interfaces below; bearerKind,
// for a Client's OAuth tokens, implements them all.
type kind[T any] interface {
	// Fetch gets a new credential. ctx carries the attempt's deadline.
	// An error is judged as the engine judges a Source's (a *TokenError
	// says whether it is worth retrying).
	Fetch(ctx context.Context) (T, error)
	// ID tells credentials apart (an access token): a credential with
	// the ID of the one being replaced is no replacement. Zero-value
	// credentials have an empty ID.
	ID(v T) string
	// Expiry returns when v expires; zero when it does not.
	Expiry(v T) time.Time
}

// Optional methods of a kind.
type (
	// storedKind turns credentials into store records and back.
	storedKind[T any] interface {
		record(v T, obtained time.Time) *record.Record
		// fromRecord returns the credential r holds; ok is false when it
		// holds none, err says why one is not usable. It is called only
		// for a record of this configuration newer than the credential
		// in service, and may take other state from it (a refresh token).
		fromRecord(r *record.Record) (v T, ok bool, err error)
	}
	// rotatingKind has credentials that change in part while their ID
	// stays (an OAuth token whose refresh token rotated).
	rotatingKind[T any] interface {
		rotated(v, old T) bool
	}
	// clockedKind moves v's expiry to at (the engine's clock).
	clockedKind[T any] interface {
		withExpiry(v T, at time.Time) T
	}
	// headerKind prepares what the transport attaches: the Authorization
	// header value, and the credential handed to a cache that refreshes
	// 10s before its expiry (oauth2.ReuseTokenSource) with that expiry
	// moved up to staleAt+10s.
	headerKind[T any] interface {
		header(v T) []string
		early(v T, expiry time.Time) T
	}
	// secretKind names v's secrets, and with ok false its own, for
	// redaction.
	secretKind[T any] interface {
		secrets(r *redact.Redactor, v T, ok bool)
	}
	// contextKind says whether Fetch honours its context: when it does
	// not, its errors are never put down to the attempt's deadline.
	contextKind interface {
		honoursContext() bool
	}
)

// bearerKind keeps the OAuth tokens of a Client's Config.Source.
type bearerKind struct {
	src oauth2.TokenSource
	// strict: the Client attaches the token itself, so it must be an RFC
	// 6750 b64token (no Config.Attach).
	strict    bool
	tokenHTTP *http.Client // for a ContextSource, as oauth2.HTTPClient
	// idToken is the last ID token seen, in a new token or in a stored
	// record whose refresh token the Source redeems (see fromRecord). A
	// refresh answer may leave it out (OpenID Connect Core §12.2); the
	// record then keeps it, so that who signed in is not lost.
	idToken atomic.Pointer[string]
}

func (k *bearerKind) Fetch(ctx context.Context) (*oauth2.Token, error) {
	var tok *oauth2.Token
	var err error
	if cs, ok := k.src.(ContextSource); ok {
		tok, err = cs.TokenContext(context.WithValue(ctx, oauth2.HTTPClient, k.tokenHTTP))
	} else {
		tok, err = k.src.Token()
	}
	if err != nil {
		return nil, err
	}
	if err := checkToken(tok, k.strict); err != nil {
		return nil, err
	}
	return tok, nil
}

func (k *bearerKind) ID(tok *oauth2.Token) string {
	if tok == nil {
		return ""
	}
	return tok.AccessToken
}

func (k *bearerKind) Expiry(tok *oauth2.Token) time.Time { return tok.Expiry }

func (k *bearerKind) honoursContext() bool {
	_, ok := k.src.(ContextSource)
	return ok
}

func (k *bearerKind) withExpiry(tok *oauth2.Token, at time.Time) *oauth2.Token {
	t2 := *tok
	t2.Expiry = at
	return &t2
}

func (k *bearerKind) rotated(tok, old *oauth2.Token) bool {
	return tok.RefreshToken != "" && tok.RefreshToken != old.RefreshToken
}

func (k *bearerKind) header(tok *oauth2.Token) []string {
	return []string{tok.Type() + " " + tok.AccessToken}
}

func (k *bearerKind) early(tok *oauth2.Token, expiry time.Time) *oauth2.Token {
	early := *tok
	early.Expiry = expiry
	return &early
}

func (k *bearerKind) record(tok *oauth2.Token, obtained time.Time) *record.Record {
	r := record.FromToken(tok, obtained)
	if r.IDToken != "" {
		idt := r.IDToken // not a pointer into r, which would keep all of it
		k.idToken.Store(&idt)
	} else if p := k.idToken.Load(); p != nil {
		r.IDToken = *p
	}
	return r
}

// fromRecord passes a stored (rotated) refresh token to the Source even
// when the access token is not usable: it wins over the seed.
//
// The ID token kept for a refresh that leaves it out becomes the
// record's, and only when the Source redeems the record's refresh token:
// the tokens of one that does not (another Source), or after a record
// without one (someone else signed in), are not that sign-in's.
func (k *bearerKind) fromRecord(r *record.Record) (*oauth2.Token, bool, error) {
	var idt *string
	if r.RefreshToken != "" {
		if s, ok := k.src.(RefreshTokenSetter); ok {
			s.SetRefreshToken(r.RefreshToken)
			if r.IDToken != "" {
				v := r.IDToken
				idt = &v
			}
		}
	}
	k.idToken.Store(idt)
	if r.AccessToken == "" {
		return nil, false, nil
	}
	tok := r.Token()
	if err := checkToken(tok, k.strict); err != nil {
		// A record this configuration could not have saved.
		return nil, false, fmt.Errorf("not usable in a request header: %w", err)
	}
	return tok, true, nil
}

// secrets adds tok's access and refresh tokens, ID token and those a
// SecretHolder Source says it carries; with ok false, the Source's own.
func (k *bearerKind) secrets(r *redact.Redactor, tok *oauth2.Token, ok bool) {
	if !ok {
		if s, ok := k.src.(interface{ addSecrets(*redact.Redactor) }); ok {
			s.addSecrets(r)
		}
		r.Add(k.sourceSecrets(nil)...)
		if p := k.idToken.Load(); p != nil {
			r.Add(*p)
		}
		return
	}
	if tok == nil {
		return
	}
	r.Add(tok.AccessToken, tok.RefreshToken)
	if s, ok := tok.Extra("id_token").(string); ok {
		r.Add(s)
	}
	r.Add(k.sourceSecrets(tok)...)
}

// sourceSecrets asks a SecretHolder Source for tok's secrets (nil: its
// own). It is called while a panic is being turned into an error: a panic
// of its own gives no secrets rather than crash the host.
func (k *bearerKind) sourceSecrets(tok *oauth2.Token) (secrets []string) {
	h, ok := k.src.(SecretHolder)
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

func (k *bearerKind) fingerprint() string {
	if f, ok := k.src.(Fingerprinter); ok {
		return f.Fingerprint()
	}
	return ""
}

func (k *bearerKind) description() string {
	if d, ok := k.src.(Describer); ok {
		return d.Description()
	}
	return ""
}
