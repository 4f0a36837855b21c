package tokenmgr

import (
	"bytes"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
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

func FuzzReadEnv(f *testing.F) {
	dir := f.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("file-s3cr3t-Q\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	missing := filepath.Join(dir, "missing")

	f.Add("https://auth.example.com/token", "client", "s3cr3t-XYZ", "a b,c", "header", "5m", "api.example.com", "memory", uint8(0))
	f.Add("http://auth.example.com/token", "client", "s3cr3t-XYZ", "", "basic", "-5m", "", "", uint8(0))
	f.Add("http://127.0.0.1:8080/t", "", "s3cr3t-XYZ", "", "", "", "*.example.com", "auto", uint8(1))
	f.Add("", "", "s3cr3t-XYZ", "", "", "soon", "a:1", "s3", uint8(4))
	f.Add("https://x/", "c", "", "", "PARAMS", "0", "", "keyring", uint8(2))
	f.Add("s3cr3t-XYZ://", "c", "s3cr3t-XYZ", "", "", "", "", "", uint8(8))
	f.Add("https://x/", "c", "s3cr3t-\xffXYZ", "", "", "", "", "", uint8(0))
	f.Fuzz(func(t *testing.T, tokenURL, clientID, secret, scopes, authStyle, refreshBefore, allowedHosts, storeKind string, mode uint8) {
		vars := map[string]string{}
		set := func(k, v string) {
			if v != "" {
				vars[k] = v
			}
		}
		set("TOKENMGR_TOKEN_URL", tokenURL)
		set("TOKENMGR_CLIENT_ID", clientID)
		set("TOKENMGR_CLIENT_SECRET", secret)
		set("TOKENMGR_SCOPES", scopes)
		set("TOKENMGR_AUTH_STYLE", authStyle)
		set("TOKENMGR_REFRESH_BEFORE", refreshBefore)
		set("TOKENMGR_ALLOWED_HOSTS", allowedHosts)
		set("TOKENMGR_STORE", storeKind)
		if mode&1 != 0 {
			vars["TOKENMGR_CLIENT_SECRET_FILE"] = secretFile
		}
		if mode&2 != 0 {
			vars["TOKENMGR_CLIENT_SECRET_FILE"] = missing
		}
		if mode&4 != 0 {
			vars["TOKENMGR_REFRESH_TOKEN"] = "rt-s3cr3t-RT9"
		}
		if mode&8 != 0 {
			vars["TOKENMGR_ACCESS_TOKEN"] = "at-s3cr3t-AT7"
		}
		read := func(vars map[string]string) (*Env, error) {
			return ReadEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
		}
		e, err := read(vars)

		// What would count as echoing the secret: a trimmed value of at
		// least 8 bytes that no other variable contains.
		sec := strings.TrimSpace(secret)
		check := len(sec) >= 8
		for k, v := range vars {
			if k != "TOKENMGR_CLIENT_SECRET" && strings.Contains(v, sec) {
				check = false
			}
		}
		// leaks reports whether s shows the secret, and not merely because
		// the fixed text around it happens to contain those bytes: the
		// same inputs with another secret of the same shape must not show
		// it too.
		leaks := func(s string, other func(*Env, error) string) bool {
			if !check || !strings.Contains(s, sec) {
				return false
			}
			alt := maps.Clone(vars)
			alt["TOKENMGR_CLIENT_SECRET"] = strings.Repeat("Q", len(sec))
			if !utf8.ValidString(secret) {
				alt["TOKENMGR_CLIENT_SECRET"] += "\xff"
			}
			return !strings.Contains(other(read(alt)), sec)
		}

		if err != nil {
			require.Nil(t, e, "both an Env and an error: %v", err)
			var ee *EnvError
			require.ErrorAs(t, err, &ee)
			require.Contains(t, EnvVars, ee.Var, "the error names a known variable")
			require.False(t, leaks(err.Error(), func(_ *Env, err error) string {
				if err == nil {
					return ""
				}
				return err.Error()
			}), "error shows the client secret %q: %v", sec, err)
			return
		}
		require.NotNil(t, e, "no Env and no error")
		show := func(e *Env, _ error) string {
			if e == nil {
				return ""
			}
			return e.String() + "\n" + e.LogValue().String()
		}
		require.False(t, leaks(show(e, nil), show), "String/LogValue show the client secret %q: %s", sec, show(e, nil))
		require.False(t, e.TokenURL == "" && e.AccessToken == "", "accepted without TOKEN_URL or ACCESS_TOKEN")
		if mode&3 == 0 {
			require.Equal(t, sec, e.ClientSecret)
		}
	})
}

// FuzzCheckToken: a token the Client accepts from a token response can go
// in an Authorization header as it is (visible ASCII only), and in strict
// mode is an RFC 6750 b64token; the error never quotes the token.
func FuzzCheckToken(f *testing.F) {
	for _, s := range []string{"abc", "aB0-._~+/==", "a=b", "abc\r\nX-Evil: 1", "", " ", "=", "ab c", "\x00", "é"} {
		f.Add(s, "Bearer", true)
		f.Add(s, "Bearer\r\nX: 1", false)
	}
	f.Fuzz(func(t *testing.T, at, typ string, strict bool) {
		err := checkToken(&oauth2.Token{AccessToken: at, TokenType: typ}, strict)
		if err != nil {
			require.ErrorIs(t, err, ErrBadTokenResponse)
			if len(at) >= 4 {
				require.NotContains(t, err.Error(), at, "the error quotes the token")
			}
			return
		}
		for _, s := range []string{at, typ} {
			require.False(t, strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r >= 0x7f }),
				"accepted %q / %q with a byte not allowed in a header", at, typ)
		}
		require.NotEmpty(t, at, "accepted an empty token")
		if strict {
			require.Empty(t, strings.TrimRight(strings.TrimLeft(at, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"), "="),
				"accepted %q, not a b64token", at)
		}
	})
}
