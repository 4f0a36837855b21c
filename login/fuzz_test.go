package login

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/tokenmgr/tokenmgr/classify"
)

// The redirect's query is outside data: whatever it holds, only the exact
// state yields a result, a code only with it, and an error's text is
// printable, short and on one line.
func FuzzParseRedirect(f *testing.F) {
	const state = "the-state"
	for _, q := range []string{
		"code=abc&state=the-state", "state=the-state&error=access_denied&error_description=no",
		"code=abc", "code=abc&state=wrong", "state=the-state&state=the-state&code=x", "state=the-state",
		"state=the-state&iss=https%3A%2F%2Fevil", "state=the-state&error=%1b%5b31m&error_description=%00%ff",
		"%zz", "state=the-state&code=a&code=b",
		"state=the-state&code=x&iss=https%3A%2F%2Fid.example.com", "state=the-state&code=x&iss=https%3A%2F%2Fid.example.com&iss=x",
	} {
		f.Add(q, false)
		f.Add(q, true)
	}
	f.Fuzz(func(t *testing.T, raw string, sendsIss bool) {
		res, ok := parseRedirect(raw, state, "https://id.example.com", sendsIss)
		q, err := url.ParseQuery(raw)
		if ok && (err != nil || len(q["state"]) != 1 || q.Get("state") != state) {
			t.Fatalf("accepted a redirect without the state: %q", raw)
		}
		if !ok {
			if res.code != "" || res.err != nil {
				t.Fatal("an ignored redirect carries a result")
			}
			return
		}
		if (res.code == "") == (res.err == nil) {
			t.Fatalf("a code or an error, exactly one: %q", raw)
		}
		if res.err != nil {
			msg := res.err.Error()
			if len(msg) > 500 || !utf8.ValidString(msg) || strings.ContainsFunc(msg, func(r rune) bool { return !unicode.IsPrint(r) }) {
				t.Fatalf("unprintable or long error %q", msg)
			}
			var d *deniedError
			if q.Has("error") && !q.Has("iss") && !sendsIss && !errors.As(res.err, &d) {
				t.Fatalf("an error redirect is not a denial: %v", res.err)
			}
		}
		if res.code != "" && (sendsIss && !q.Has("iss") || q.Has("iss") && q.Get("iss") != "https://id.example.com") {
			t.Fatalf("a code taken without the issuer's iss: %q (sendsIss %v)", raw, sendsIss)
		}
	})
}

// A discovery document is outside data: it is accepted only when it names
// the configured issuer exactly and its endpoints are https or loopback
// http, and its errors stay short.
func FuzzParseDiscovery(f *testing.F) {
	const issuer = "https://id.example.com"
	for _, d := range []string{
		`{"issuer":"https://id.example.com","token_endpoint":"https://id.example.com/token","authorization_endpoint":"https://id.example.com/auth","jwks_uri":"https://id.example.com/keys"}`,
		`{"issuer":"https://id.example.com/","token_endpoint":"https://id.example.com/token"}`,
		`{"issuer":"https://id.example.com","token_endpoint":"http://id.example.com/token"}`,
		`{"issuer":"https://id.example.com","token_endpoint":"http://127.0.0.1:9/token"}`,
		`{"issuer":"https://id.example.com","token_endpoint":"https://x/t","device_authorization_endpoint":"javascript:alert(1)"}`,
		`{"issuer":1}`, `[]`, `{`, `null`, ``,
	} {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := parseDiscovery(issuer, body)
		if err != nil {
			if len(err.Error()) > 400 {
				t.Fatalf("long error: %d bytes", len(err.Error()))
			}
			return
		}
		if d.Issuer != issuer || d.Token == "" {
			t.Fatalf("accepted %+v", d)
		}
		for _, u := range []string{d.Authorization, d.Token, d.Device, d.Revocation, d.JWKS} {
			if u == "" {
				continue
			}
			p, err := url.Parse(u)
			if err != nil || !(p.Scheme == "https" || p.Scheme == "http" && classify.IsLoopback(p.Hostname())) {
				t.Fatalf("accepted endpoint %q", u)
			}
		}
	})
}

func TestCheckURL(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://id.example.com": true, "http://127.0.0.1:8080": true, "http://[::1]/x": true, "http://localhost:1": true,
		"http://id.example.com": false, "ftp://id.example.com": false, "id.example.com": false, "https://": false,
		"https://id.example.com?x=1": false, "https://id.example.com#f": false,
	} {
		err := checkURL("Issuer", u)
		if (err == nil) != ok {
			t.Errorf("%s: %v", u, err)
		}
	}
	if err := checkURL("Issuer", "http://id.example.com"); !errors.Is(err, ErrNotLoopback) {
		t.Errorf("plain http: %v", err)
	}
}
