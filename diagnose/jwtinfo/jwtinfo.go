// Package jwtinfo tells an opaque token from a JWT and decodes a JWT's
// header and registered claims without verifying it.
//
// Decoding is done by hand (base64url and JSON) so that a malformed token
// is reported precisely (which part, and whether base64 or JSON is wrong)
// and an unsecured token (alg "none"), which go-jose refuses to parse, is
// still recognised. Signature verification is the diagnose module's (with
// go-jose), so that go-jose stays out of the root module's graph.
//
// No error of this package contains any part of the token.
package jwtinfo

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Format is what kind of token a string is.
type Format string

// Formats.
const (
	Opaque Format = "opaque" // not a JWT: nothing can be read from it
	JWS    Format = "jwt"    // a signed (or unsecured) JWT in compact form
	JWE    Format = "jwe"    // an encrypted JWT: only its header is readable
)

// Header is the part of a JOSE header worth showing.
type Header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid,omitempty"`
	Typ string `json:"typ,omitempty"`
	Cty string `json:"cty,omitempty"`
	Enc string `json:"enc,omitempty"` // JWE only
}

// Claims are the registered, non-secret claims of RFC 7519.
type Claims struct {
	Issuer    string     `json:"iss,omitempty"`
	Subject   string     `json:"sub,omitempty"`
	Audience  []string   `json:"aud,omitempty"`
	Expiry    *time.Time `json:"exp,omitempty"`
	IssuedAt  *time.Time `json:"iat,omitempty"`
	NotBefore *time.Time `json:"nbf,omitempty"`
	// Email and Name are OpenID Connect claims of an ID token (who signed
	// in); empty when absent or not strings.
	Email string `json:"email,omitempty"`
	Name  string `json:"name,omitempty"`
}

// Info is what Parse found.
type Info struct {
	Format Format
	Header Header // zero for Opaque
	Claims Claims // zero for Opaque and JWE
}

// Unsecured reports whether the token claims no signature (alg "none").
func (i *Info) Unsecured() bool {
	return i.Format == JWS && strings.EqualFold(i.Header.Alg, "none")
}

// MalformedError is a token that looks like a JWT but does not decode.
type MalformedError struct {
	Part    string // "token", "header", "claims" or "signature"
	Problem string
}

func (e *MalformedError) Error() string { return "malformed JWT: " + e.Part + " " + e.Problem }

// IsMalformed reports whether err is a *MalformedError.
func IsMalformed(err error) bool {
	var me *MalformedError
	return errors.As(err, &me)
}

// Parse decides whether token is a JWT and decodes its header and claims
// without verifying anything. An opaque token gives Format Opaque and no
// error. A string that starts like a JWT ("eyJ", the base64 of `{"`) or
// has three dot-separated parts whose first decodes to a JSON object, but
// does not decode as a whole, gives a *MalformedError. A string without
// dots is opaque unless it decodes to a JOSE header (a JWT cut short).
func Parse(token string) (*Info, error) {
	parts := strings.Split(token, ".")
	looksJWT := strings.HasPrefix(token, "eyJ")
	if !looksJWT && len(parts) == 3 {
		if b, err := decodeSegment(parts[0]); err == nil && len(bytes.TrimSpace(b)) > 0 && bytes.TrimSpace(b)[0] == '{' {
			looksJWT = true
		}
	}
	if !looksJWT {
		return &Info{Format: Opaque}, nil
	}
	switch len(parts) {
	case 1:
		// Some opaque tokens are base64 of a JSON object; only one with a
		// JOSE header's alg is a JWT cut short.
		if m, err := decodeObject("token", parts[0]); err != nil || m["alg"] == nil {
			return &Info{Format: Opaque}, nil
		}
		return nil, &MalformedError{Part: "token", Problem: "is a JOSE header alone: the token was cut at its first dot"}
	case 3:
	case 5:
		h, err := parseHeader(parts[0])
		if err != nil {
			return nil, err
		}
		if h.Enc == "" {
			return nil, &MalformedError{Part: "header", Problem: "of a 5-part (JWE) token has no enc"}
		}
		return &Info{Format: JWE, Header: h}, nil
	default:
		return nil, &MalformedError{Part: "token", Problem: fmt.Sprintf("has %d dot-separated parts, a JWT has 3 (or 5 when encrypted)", len(parts))}
	}
	h, err := parseHeader(parts[0])
	if err != nil {
		return nil, err
	}
	c, err := parseClaims(parts[1])
	if err != nil {
		return nil, err
	}
	sig, err := decodeSegment(parts[2])
	if err != nil {
		return nil, &MalformedError{Part: "signature", Problem: "is not base64url"}
	}
	unsecured := strings.EqualFold(h.Alg, "none")
	if !unsecured && len(sig) == 0 {
		return nil, &MalformedError{Part: "signature", Problem: "is empty but alg is " + quote(h.Alg)}
	}
	return &Info{Format: JWS, Header: h, Claims: c}, nil
}

// decodeSegment decodes base64url without padding, tolerating padding.
func decodeSegment(s string) ([]byte, error) {
	return base64.RawURLEncoding.Strict().DecodeString(strings.TrimRight(s, "="))
}

func decodeObject(part, seg string) (map[string]json.RawMessage, error) {
	if seg == "" {
		return nil, &MalformedError{Part: part, Problem: "is empty"}
	}
	b, err := decodeSegment(seg)
	if err != nil {
		return nil, &MalformedError{Part: part, Problem: "is not base64url"}
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil || m == nil {
		return nil, &MalformedError{Part: part, Problem: "is not a JSON object"}
	}
	return m, nil
}

func parseHeader(seg string) (Header, error) {
	m, err := decodeObject("header", seg)
	if err != nil {
		return Header{}, err
	}
	var h Header
	for _, f := range []struct {
		name string
		to   *string
	}{{"alg", &h.Alg}, {"kid", &h.Kid}, {"typ", &h.Typ}, {"cty", &h.Cty}, {"enc", &h.Enc}} {
		raw, ok := m[f.name]
		if !ok {
			continue
		}
		if json.Unmarshal(raw, f.to) != nil {
			return Header{}, &MalformedError{Part: "header", Problem: "field " + f.name + " is not a string"}
		}
	}
	if h.Alg == "" {
		return Header{}, &MalformedError{Part: "header", Problem: "has no alg"}
	}
	return h, nil
}

func parseClaims(seg string) (Claims, error) {
	m, err := decodeObject("claims", seg)
	if err != nil {
		return Claims{}, err
	}
	var c Claims
	bad := func(name, want string) error {
		return &MalformedError{Part: "claims", Problem: "field " + name + " is not " + want}
	}
	for _, f := range []struct {
		name string
		to   *string
	}{{"iss", &c.Issuer}, {"sub", &c.Subject}} {
		if raw, ok := m[f.name]; ok && json.Unmarshal(raw, f.to) != nil {
			return Claims{}, bad(f.name, "a string")
		}
	}
	for _, f := range []struct {
		name string
		to   *string
	}{{"email", &c.Email}, {"name", &c.Name}} {
		if raw, ok := m[f.name]; ok {
			json.Unmarshal(raw, f.to) // not a registered claim: a wrong type is no error, only not shown
		}
	}
	if raw, ok := m["aud"]; ok {
		var one string
		if json.Unmarshal(raw, &one) == nil {
			c.Audience = []string{one}
		} else if json.Unmarshal(raw, &c.Audience) != nil {
			return Claims{}, bad("aud", "a string or an array of strings")
		}
	}
	for _, f := range []struct {
		name string
		to   **time.Time
	}{{"exp", &c.Expiry}, {"iat", &c.IssuedAt}, {"nbf", &c.NotBefore}} {
		raw, ok := m[f.name]
		if !ok || string(raw) == "null" {
			continue
		}
		var n float64
		if json.Unmarshal(raw, &n) != nil || math.IsNaN(n) || math.IsInf(n, 0) || math.Abs(n) > 1e12 {
			return Claims{}, bad(f.name, "a NumericDate (seconds since 1970)")
		}
		sec, frac := math.Modf(n)
		t := time.Unix(int64(sec), int64(frac*1e9)).UTC()
		*f.to = &t
	}
	return c, nil
}

func quote(s string) string {
	if len(s) > 20 {
		s = s[:20] + "…"
	}
	return fmt.Sprintf("%q", s)
}
