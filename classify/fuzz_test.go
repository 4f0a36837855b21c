package classify

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

var knownSources = []string{"", "x-amzn-errortype", "json", "xml", "www-authenticate", "status"}

// addFixtureSeeds adds every response under testdata/responses as a seed.
func addFixtureSeeds(f *testing.F, add func(status int, errType, wwwAuth string, body []byte)) {
	ents, err := os.ReadDir(fixtureDir)
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".http") {
			continue
		}
		resp, body := loadFixture(f, e.Name(), http.MethodGet)
		add(resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), resp.Header.Get("Www-Authenticate"), body)
	}
}

func FuzzClassify(f *testing.F) {
	addFixtureSeeds(f, func(status int, errType, wwwAuth string, body []byte) {
		f.Add(status, errType, wwwAuth, body, false)
		f.Add(status, errType, wwwAuth, body, true)
	})
	f.Add(401, "", `Bearer error=invalid_token, claims=""`, []byte(`{"error":{"code":"ExpiredAuthenticationToken"}}`), true)
	f.Add(400, "a:b#c", "", []byte(`<Response><Errors><Error><Code>x#RequestExpired:y</Code>`), false)
	f.Add(403, "", "", []byte(`{"__type":{"nested":1},"code":["x"],"error":"invalid_token"}`), true)
	f.Fuzz(func(t *testing.T, status int, errType, wwwAuth string, body []byte, knownLength bool) {
		h := http.Header{}
		if errType != "" {
			h.Set("X-Amzn-Errortype", errType)
		}
		if wwwAuth != "" {
			h.Set("Www-Authenticate", wwwAuth)
		}
		length := int64(-1)
		if knownLength {
			length = int64(len(body))
		}
		orig := bytes.Clone(body)
		resp := &http.Response{
			StatusCode: status, Header: h, ContentLength: length,
			Body: io.NopCloser(bytes.NewReader(body)),
		}
		var cl Classifier
		got := cl.ClassifyResponse(resp, true)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err, "reading the body back")
		require.Equal(t, orig, b, "the body is handed back unchanged")
		require.Equal(t, orig, body, "the classifier does not write to the caller's bytes")
		require.True(t, got.Kind >= KindOther && got.Kind <= KindAccessDenied && !strings.HasPrefix(got.Kind.String(), "Kind("),
			"unknown kind %d", got.Kind)
		require.Equal(t, got.Kind == KindInvalidToken, got.Retry(), "Retry() for kind %v", got.Kind)
		require.Contains(t, knownSources, got.Source)
		if got.Source == "" {
			require.Empty(t, got.Code, "a code without a source")
		}
		// The direct call agrees, and a carried=false verdict differs only
		// by a bare 401 becoming KindOther.
		require.Equal(t, got, cl.Classify(status, h, body, true), "Classify and ClassifyResponse agree")
		nc := cl.Classify(status, h, body, false)
		if !(got.Kind == KindInvalidToken && got.Source == "status" && nc.Kind == KindOther) {
			require.Equal(t, got, nc, "carried=false changes only a bare 401")
		}
	})
}

func FuzzBearerChallenge(f *testing.F) {
	addFixtureSeeds(f, func(_ int, _, wwwAuth string, _ []byte) {
		if wwwAuth != "" {
			f.Add(wwwAuth)
		}
	})
	for _, s := range []string{
		`Bearer error=invalid_token`, `=Bearer realm=""`, `Basic realm="x", Bearer error="a\"b"`,
		`Bearer error="unterminated`, `Negotiate abc==, Bearer`, `= = ==,,  ,=`, `Bearer error="x\`,
		"Bearer\terror\t=\tinvalid_token", `Bearer realm="a",,,error=,claims="",resource`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var c challenge
		done := make(chan struct{})
		go func() {
			defer close(done)
			// One header value, and the same split into several values.
			c = parseBearerChallenge([]string{s})
			parseBearerChallenge(strings.Split(s, "\n"))
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			require.FailNow(t, "parseBearerChallenge did not return", "%q", s)
		}
		if !strings.Contains(strings.ToLower(s), "bearer") {
			require.Zero(t, c, "no Bearer scheme in %q", s)
		}
		require.Equal(t, strings.ToLower(c.err), c.err, "error lower-cased")
		// err is lower-cased, which may turn each invalid UTF-8 byte into a
		// 3-byte U+FFFD; claims is kept as sent.
		require.LessOrEqual(t, len(c.err), 3*len(s), "error longer than the input")
		require.LessOrEqual(t, len(c.claims), len(s), "claims longer than the input")
	})
}
