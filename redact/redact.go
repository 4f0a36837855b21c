// Package redact blanks secrets out of text in every encoding a token
// request carries them in. It is the one place tokenmgr, its stores and
// its command redact: use it for any text that may quote a request to a
// token endpoint (an error from the server, a panic value, a log line).
package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// Redacted replaces a secret wherever a [Redactor] finds one.
const Redacted = "[REDACTED]"

// minRedact is the shortest secret a [Redactor] looks for: a shorter one
// would blank out ordinary words, and is no secret worth the name.
const minRedact = 4

// Redactor blanks secrets out of text in every encoding a token request
// carries them in, so that a server quoting the request back (in an
// error_description, a body, a header) cannot make a log line or error
// message show one.
//
// For each secret it looks for the secret as is, URL-encoded (the form
// body's and url.QueryEscape's encoding, and url.PathEscape's), JSON-escaped
// (as encoding/json, most other encoders, PHP's and Python's escape it),
// and, for a client secret given with [Redactor.AddClient], the base64 of
// the HTTP Basic credential "id:secret" (raw and with both parts
// URL-encoded first, as golang.org/x/oauth2 sends it). Secrets shorter than
// 4 bytes are ignored.
//
// The zero value is ready to use; a Redactor is safe for concurrent use.
type Redactor struct {
	mu   sync.RWMutex
	pats []string // longest first, so a longer encoding wins over a piece of it
}

// New returns a [Redactor] that knows secrets.
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	r.Add(secrets...)
	return r
}

// Add makes r look for each secret, in every encoding.
func (r *Redactor) Add(secrets ...string) {
	var pats []string
	for _, s := range secrets {
		pats = appendEncodings(pats, s)
	}
	r.add(pats)
}

// AddClient makes r look for secret, in every encoding, and for the HTTP
// Basic credential that pairs it with the client ID id.
func (r *Redactor) AddClient(id, secret string) {
	if len(secret) < minRedact {
		return
	}
	pats := appendEncodings(nil, secret)
	for _, pair := range []string{id + ":" + secret, url.QueryEscape(id) + ":" + url.QueryEscape(secret)} {
		pats = append(pats, base64.StdEncoding.EncodeToString([]byte(pair)))
	}
	r.add(pats)
}

func (r *Redactor) add(pats []string) {
	if len(pats) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range pats {
		if !slices.Contains(r.pats, p) {
			r.pats = append(r.pats, p)
		}
	}
	slices.SortStableFunc(r.pats, func(a, b string) int { return len(b) - len(a) })
}

// appendEncodings appends s and its encodings, each once.
func appendEncodings(pats []string, s string) []string {
	if len(s) < minRedact {
		return pats
	}
	for _, p := range append([]string{s, url.QueryEscape(s), url.PathEscape(s)}, jsonEscapes(s)...) {
		if !slices.Contains(pats, p) {
			pats = append(pats, p)
		}
	}
	return pats
}

// jsonEscapes returns s as a JSON string's contents in the escapings
// servers' encoders use: encoding/json's (HTML characters as \u0026 and
// the like), without HTML escaping (most others), with "/" as "\/" (PHP's
// json_encode), and each of the last two with non-ASCII as \u escapes
// (Python's json.dumps, PHP).
func jsonEscapes(s string) []string {
	js, _ := json.Marshal(s)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	plain := strings.TrimSuffix(strings.TrimPrefix(strings.TrimSuffix(b.String(), "\n"), `"`), `"`)
	slashed := strings.ReplaceAll(plain, "/", `\/`)
	return []string{string(js[1 : len(js)-1]), plain, slashed, asciiJSON(plain), asciiJSON(slashed)}
}

// asciiJSON escapes the non-ASCII characters of JSON string contents as
// \u escapes (UTF-16 surrogate pairs beyond the BMP), in lower-case hex.
func asciiJSON(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&b, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

// String says how many patterns r looks for, never the secrets: %v of
// a Redactor, or a log of it, would print them otherwise.
func (r *Redactor) String() string {
	if r == nil {
		return "redact.Redactor(none)"
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return fmt.Sprintf("redact.Redactor(%d patterns)", len(r.pats))
}

// GoString keeps %#v from printing the secrets field by field.
func (r *Redactor) GoString() string { return r.String() }

// Redact returns s with every secret r knows replaced by [Redacted].
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, p := range r.pats {
		if strings.Contains(s, p) {
			s = strings.ReplaceAll(s, p, Redacted)
		}
	}
	return s
}

// RedactBytes is [Redactor.Redact] for a byte slice. It returns b itself
// when there is nothing to redact.
func (r *Redactor) RedactBytes(b []byte) []byte {
	if r == nil {
		return b
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, p := range r.pats {
		if bytes.Contains(b, []byte(p)) {
			b = bytes.ReplaceAll(b, []byte(p), []byte(Redacted))
		}
	}
	return b
}
