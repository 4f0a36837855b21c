package redact

import (
	"encoding/base64"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRedactorEncodings(t *testing.T) {
	const id, secret = "my client", "s3cret+/ =&"
	var r Redactor
	r.AddClient(id, secret)
	r.Add("tok", "refresh-token/1")
	for _, s := range []string{
		secret,
		url.QueryEscape(secret),
		url.PathEscape(secret),
		`s3cret+/ =\u0026`, // JSON-escaped by encoding/json
		base64.StdEncoding.EncodeToString([]byte(id + ":" + secret)),
		base64.StdEncoding.EncodeToString([]byte(url.QueryEscape(id) + ":" + url.QueryEscape(secret))),
		"refresh-token/1",
		url.QueryEscape("refresh-token/1"),
	} {
		assert.Equal(t, "a "+Redacted+" b", r.Redact("a "+s+" b"), s)
		assert.Equal(t, "a "+Redacted+" b", string(r.RedactBytes([]byte("a "+s+" b"))), s)
	}
	assert.Equal(t, "tok", r.Redact("tok"), "secrets shorter than 4 bytes are ignored")

	// JSON as other servers' encoders escape it: no HTML escaping (most),
	// "/" as "\/" (PHP's json_encode), non-ASCII as \u escapes (Python's
	// json.dumps, PHP).
	const quoted, accented = `q"uo/te&d`, "pässwörd/1"
	r.Add(quoted, accented)
	for _, s := range []string{
		`q\"uo/te&d`,            // Node, Java, Python
		`q\"uo\/te&d`,           // PHP
		`q\"uo/te\u0026d`,       // Go
		`p\u00e4ssw\u00f6rd/1`,  // Python
		`p\u00e4ssw\u00f6rd\/1`, // PHP
	} {
		assert.Equal(t, "a "+Redacted+" b", r.Redact("a "+s+" b"), s)
	}
	assert.Equal(t, "x", (*Redactor)(nil).Redact("x"))
}
