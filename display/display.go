// Package display words times, durations, stores and text from outside
// (a server's message, a URL) for people: shortened on a character
// boundary, on one line, a URL without its password. The root
// package's errors, awscreds, the stores, package diagnose and the CLI all
// use it, so a value reads the same in an error, a log and a terminal.
package display

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Relative says how far t is from now: "in 59m58s" or "3m2s ago".
func Relative(t, now time.Time) string {
	d := t.Sub(now)
	if d >= 0 {
		return "in " + Duration(d)
	}
	return Duration(-d) + " ago"
}

// Duration drops sub-second noise, seconds beyond an hour and minutes
// beyond a day: "1.5s", "59m58s", "1h", "2h5m", "3d4h".
func Duration(d time.Duration) string {
	switch {
	case d >= 24*time.Hour-30*time.Minute:
		r := d.Round(time.Hour)
		days, h := r/(24*time.Hour), (r%(24*time.Hour))/time.Hour
		if h == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%dh", days, h)
	case d >= time.Hour-30*time.Second:
		r := d.Round(time.Minute)
		h, m := r/time.Hour, (r%time.Hour)/time.Minute
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	case d >= time.Second:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

// Stamp formats a time for people: UTC, RFC 3339, to the second.
func Stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// StoreName names a store (any value, usually a store.Store) without a
// secret: its String method, else its type; "none" for nil.
func StoreName(st any) string {
	if st == nil {
		return "none"
	}
	if s, ok := st.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", st)
}

// TokenType is the token type as it is sent ("bearer" becomes "Bearer").
func TokenType(t string) string {
	if t == "" || strings.EqualFold(t, "bearer") {
		return "Bearer"
	}
	return t
}

// Cut shortens s to at most n bytes, on a character boundary, marking the
// cut with "…": for a value quoted in an error that must stay short.
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Printable is text a server sent (an error code, a description, an STS
// message) made safe to print on a terminal or in a line of log: control characters, which
// RFC 6749 §5.2 does not allow there anyway, are written as Go escapes
// (\x1b, \n), so an answer cannot move the cursor, recolour the terminal
// or forge a log line; invalid UTF-8 becomes U+FFFD. Then it is cut to n
// bytes.
func Printable(s string, n int) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || !unicode.IsPrint(r) && r != ' ' {
			clean = false
			break
		}
	}
	if !clean {
		var b strings.Builder
		for _, r := range strings.ToValidUTF8(s, "\uFFFD") {
			if unicode.IsPrint(r) || r == ' ' {
				b.WriteRune(r)
			} else {
				q := strconv.QuoteRune(r)
				b.WriteString(q[1 : len(q)-1])
			}
		}
		s = b.String()
	}
	return Cut(s, n)
}

// OneLine keeps s on one line: runs of white space, newlines included,
// become one space.
func OneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\r", " ")), " ")
}

// URL shows a URL without the password of its user information (as
// url.URL.Redacted does); "(unparsable URL)" for one that does not parse.
func URL(v string) string {
	u, err := url.Parse(v)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
