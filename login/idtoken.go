package login

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"net/http"

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
	v := ep.provider.VerifierContext(oidc.ClientContext(ctx, limitBodies(c.httpClient(), maxJWKS)), &oidc.Config{ClientID: c.ClientID})
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

// maxJWKS bounds the issuer's key set: go-oidc reads it whole, and quotes
// all of it in its errors.
const maxJWKS = 1 << 20

// limitBodies returns hc, copied, whose answers fail to read past max
// bytes.
func limitBodies(hc *http.Client, max int64) *http.Client {
	c := *hc
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	c.Transport = limitTransport{rt, max}
	return &c
}

type limitTransport struct {
	rt  http.RoundTripper
	max int64
}

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitBody{ReadCloser: resp.Body, left: t.max, max: t.max}
	return resp, nil
}

// limitBody is an answer's body that fails once it has given max bytes.
type limitBody struct {
	io.ReadCloser
	left, max int64
}

func (b *limitBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		return 0, fmt.Errorf("the issuer's answer is larger than %d KiB", b.max>>10)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}
