package login

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// ErrIDToken is matched when the ID token fails verification: signature,
// issuer, audience, expiry or nonce.
var ErrIDToken = errors.New("login: ID token rejected")

// checkIDToken verifies the ID token of a token response with go-oidc
// (signature against the issuer's JWKS, issuer, audience, expiry) and,
// when nonce is set, its nonce. With "openid" asked for, a response
// without one is an error. Without an issuer nothing can verify it, and
// it is dropped rather than kept unverified.
func (c *Config) checkIDToken(ctx context.Context, ep *endpoints, tok *oauth2.Token, nonce string) (*oauth2.Token, error) {
	raw, _ := tok.Extra("id_token").(string)
	if ep.provider == nil {
		if raw != "" {
			return dropIDToken(tok), nil
		}
		return tok, nil
	}
	if raw == "" {
		if c.wantsIDToken() && nonce != "" {
			return nil, fmt.Errorf("%w: the token response has none, with openid asked for", ErrIDToken)
		}
		return tok, nil
	}
	v := ep.provider.VerifierContext(oidc.ClientContext(ctx, c.httpClient()), &oidc.Config{ClientID: c.ClientID})
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrIDToken, err)
	}
	if nonce != "" && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return nil, fmt.Errorf("%w: its nonce is not the one this sign-in sent", ErrIDToken)
	}
	return tok, nil
}

// dropIDToken returns tok without its id_token.
func dropIDToken(tok *oauth2.Token) *oauth2.Token {
	t := &oauth2.Token{AccessToken: tok.AccessToken, TokenType: tok.TokenType, RefreshToken: tok.RefreshToken, Expiry: tok.Expiry, ExpiresIn: tok.ExpiresIn}
	if s, ok := tok.Extra("scope").(string); ok {
		t = t.WithExtra(map[string]any{"scope": s})
	}
	return t
}
