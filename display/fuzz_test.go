package display

import (
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// FuzzPrintable: whatever text an endpoint sends for its error code and
// description, what goes into a TokenError is valid UTF-8 without control
// characters, cut on a character boundary.
func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"invalid_client", "\x1b[31mred\x1b[0m", "line\nforged", "é\xc3", "\u2028\u0085\t"} {
		f.Add(s, 200)
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		n = max(1, n%400)
		p := Printable(s, n)
		require.True(t, utf8.ValidString(p), "%q", p)
		require.LessOrEqual(t, len(p), n+len("…"))
		for _, r := range p {
			require.True(t, r == ' ' || unicode.IsPrint(r), "%q in %q", r, p)
		}
	})
}
