package classify

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Fixtures under testdata/responses are real (or rule-derived synthetic)
// error responses from ../shared/wire-formats.md, stored as raw HTTP/1.1
// with LF line endings: a status line, headers, a blank line, the body.

const fixtureDir = "testdata/responses"

// splitFixture returns the response head with CRLF line endings (ending in
// the blank line) and the body exactly as stored.
func splitFixture(t testing.TB, raw []byte) (head, body []byte) {
	t.Helper()
	sep := []byte("\n\n")
	i := bytes.Index(raw, sep)
	if j := bytes.Index(raw, []byte("\r\n\r\n")); j >= 0 && (i < 0 || j < i) {
		i, sep = j, []byte("\r\n\r\n")
	}
	require.GreaterOrEqual(t, i, 0, "fixture has no blank line after the headers")
	lines := strings.Split(string(raw[:i]), "\n")
	for k := range lines {
		lines[k] = strings.TrimSuffix(lines[k], "\r")
	}
	return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n"), raw[i+len(sep):]
}

// loadFixture parses testdata/responses/name as the answer to a request of
// the given method, and returns it with the body the caller should read.
func loadFixture(t testing.TB, name, method string) (*http.Response, []byte) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(fixtureDir, name))
	require.NoError(t, err)
	head, body := splitFixture(t, raw)
	req, err := http.NewRequest(method, "https://api.example.com/", nil)
	require.NoError(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(bytes.NewReader(head), bytes.NewReader(body))), req)
	require.NoError(t, err)
	t.Cleanup(func() { resp.Body.Close() })
	if method == http.MethodHead {
		return resp, nil
	}
	return resp, body
}

type classifyCase struct {
	file    string
	kind    Kind
	code    string
	source  string
	method  string // GET when empty
	noToken bool   // the request carried no token
}

// classifyCases maps every fixture to its verdict. The rules: classify by
// code; retry only on KindInvalidToken.
var classifyCases = []classifyCase{
	// AWS query (STS/IAM) XML.
	{file: "01-sts-invalidclienttokenid.http", kind: KindInvalidToken, code: "InvalidClientTokenId", source: "xml"},
	{file: "02-iam-expiredtoken.http", kind: KindInvalidToken, code: "ExpiredToken", source: "xml"},
	{file: "03-awsquery-invalidgreeting.http", kind: KindOther, code: "InvalidGreeting", source: "xml"},
	{file: "04-ec2query-invalidgreeting.http", kind: KindOther, code: "InvalidGreeting", source: "xml"},
	// AWS JSON protocol.
	{file: "05-dynamodb-expiredtokenexception.http", kind: KindInvalidToken, code: "ExpiredTokenException", source: "json"},
	{file: "06-cognito-unrecognizedclientexception.http", kind: KindInvalidToken, code: "UnrecognizedClientException", source: "json"},
	{file: "07-json10-namespaced-type.http", kind: KindOther, code: "InvalidGreeting", source: "json"},
	{file: "08-json10-fooerror-type.http", kind: KindOther, code: "FooError", source: "json"},
	{file: "09-json10-fooerror-code.http", kind: KindOther, code: "FooError", source: "json"},
	{file: "10-json10-fooerror-code-url.http", kind: KindOther, code: "FooError", source: "json"},
	{file: "11-json10-fooerror-header.http", kind: KindOther, code: "FooError", source: "x-amzn-errortype"},
	// AWS restJson.
	{file: "12-restjson-header-invalidgreeting.http", kind: KindOther, code: "InvalidGreeting", source: "x-amzn-errortype"},
	{file: "13-restjson-header-complexerror.http", kind: KindOther, code: "ComplexError", source: "x-amzn-errortype"},
	{file: "14-lambda-unrecognizedclientexception.http", kind: KindInvalidToken, code: "UnrecognizedClientException", source: "x-amzn-errortype"},
	{file: "15-lambda-expiredtokenexception.http", kind: KindInvalidToken, code: "ExpiredTokenException", source: "x-amzn-errortype"},
	{file: "16-bedrock-header-with-url.http", kind: KindInvalidToken, code: "UnrecognizedClientException", source: "x-amzn-errortype"},
	{file: "17-apigateway-message-only.http", kind: KindAccessDenied, code: "", source: "status"}, // plain 403: the message is not a code
	// S3.
	{file: "18-s3-expiredtoken.http", kind: KindInvalidToken, code: "ExpiredToken", source: "xml"},
	{file: "19-s3-invalidaccesskeyid.http", kind: KindInvalidToken, code: "InvalidAccessKeyId", source: "xml"},
	{file: "20-s3-invalidtoken.http", kind: KindInvalidToken, code: "InvalidToken", source: "xml"},
	{file: "21-s3-head-400-nobody.http", kind: KindOther, code: "", source: "", method: http.MethodHead},
	// RFC 6750.
	{file: "22-rfc6750-no-error.http", kind: KindInvalidToken, code: "", source: "status"}, // bare 401 to a request that carried a token
	{file: "23-rfc6750-invalid-token.http", kind: KindInvalidToken, code: "invalid_token", source: "www-authenticate"},
	{file: "24-google-insufficient-scope.http", kind: KindInsufficientScope, code: "insufficient_scope", source: "www-authenticate"},
	// Token endpoint bodies (RFC 6749 §5.2) say nothing about a sent access token.
	{file: "25-token-endpoint-invalid-request.http", kind: KindOther, code: "invalid_request", source: "json"},
	{file: "26-oauth2-invalid-grant.http", kind: KindOther, code: "invalid_grant", source: "json"},
	// Google.
	{file: "27-google-401-invalid-token.http", kind: KindInvalidToken, code: "invalid_token", source: "www-authenticate"},
	{file: "28-google-401-invalid-token-unquoted.http", kind: KindInvalidToken, code: "invalid_token", source: "www-authenticate"},
	// Azure / Entra.
	{file: "29-azure-cae-insufficient-claims.http", kind: KindClaimsChallenge, code: "insufficient_claims", source: "www-authenticate"},
	{file: "30-azure-cae-revocation.http", kind: KindClaimsChallenge, code: "insufficient_claims", source: "www-authenticate"},
	{file: "31-azure-cae-invalid-token-with-claims.http", kind: KindClaimsChallenge, code: "invalid_token", source: "www-authenticate"},
	{file: "32-arm-invalid-token-no-claims.http", kind: KindInvalidToken, code: "invalid_token", source: "www-authenticate"},
	{file: "33-arm-expiredauthenticationtoken.http", kind: KindInvalidToken, code: "ExpiredAuthenticationToken", source: "json"},
	{file: "34-graph-invalidauthenticationtoken.http", kind: KindInvalidToken, code: "InvalidAuthenticationToken", source: "json"},
	{file: "35-keyvault-discovery-challenge.http", kind: KindChallenge, code: "Unauthorized", source: "www-authenticate"},
	// GitHub: no code, a 401 after sending a token gets the single retry.
	{file: "36-github-bad-credentials.http", kind: KindInvalidToken, code: "", source: "status"},
	{file: "37-github-enterprise-must-authenticate.http", kind: KindInvalidToken, code: "", source: "status"},
	// Synthetic cases for the rules.
	{file: "50-synthetic-ec2-requestexpired.http", kind: KindClockSkew, code: "RequestExpired", source: "xml"},
	{file: "51-synthetic-s3-requesttimetooskewed.http", kind: KindClockSkew, code: "RequestTimeTooSkewed", source: "xml"},
	{file: "52-synthetic-ec2-authfailure-expired.http", kind: KindInvalidToken, code: "InvalidToken", source: "xml"},
	{file: "53-synthetic-type-namespaced-unrecognized.http", kind: KindInvalidToken, code: "UnrecognizedClientException", source: "json"},
	{file: "54-synthetic-code-url-suffix-expired.http", kind: KindInvalidToken, code: "ExpiredTokenException", source: "json"},
	{file: "55-synthetic-header-url-suffix-expired.http", kind: KindInvalidToken, code: "ExpiredTokenException", source: "x-amzn-errortype"},
	{file: "56-synthetic-nested-type-not-counted.http", kind: KindOther, code: "", source: ""},
	{file: "57-synthetic-plain-403.http", kind: KindAccessDenied, code: "", source: "status"},
	{file: "58-synthetic-plain-500.http", kind: KindOther, code: "", source: ""},
	{file: "59-synthetic-sts-accessdenied.http", kind: KindAccessDenied, code: "AccessDenied", source: "xml"},
	{file: "60-synthetic-json-code-key-case.http", kind: KindInvalidToken, code: "ExpiredToken", source: "json"},
	{file: "61-synthetic-www-authenticate-multiple.http", kind: KindInvalidToken, code: "invalid_token", source: "www-authenticate"},
	{file: "62-synthetic-insufficient-scope-401.http", kind: KindInsufficientScope, code: "insufficient_scope", source: "www-authenticate"},
	{file: "63-synthetic-s3-invalidaccesskeyid-400.http", kind: KindInvalidToken, code: "InvalidAccessKeyId", source: "xml"},
	{file: "64-synthetic-mycustomexpired.http", kind: KindOther, code: "MyCustomExpired", source: "json"}, // not known without Extra
	{file: "65-synthetic-xml-code-wrong-depth.http", kind: KindOther, code: "", source: ""},
}

func TestClassifyFixtures(t *testing.T) {
	for _, tc := range classifyCases {
		t.Run(strings.TrimSuffix(tc.file, ".http"), func(t *testing.T) {
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			resp, want := loadFixture(t, tc.file, method)
			if cl := resp.Header.Get("Content-Length"); cl != "" && method != http.MethodHead {
				require.Equal(t, int64(len(want)), resp.ContentLength, "fixture Content-Length disagrees with its body")
			}
			var cl Classifier
			got := cl.ClassifyResponse(resp, !tc.noToken)
			assert.Equal(t, tc.kind, got.Kind, "kind: got %v want %v", got.Kind, tc.kind)
			assert.Equal(t, tc.code, got.Code, "code")
			assert.Equal(t, tc.source, got.Source, "source")
			assert.Equal(t, tc.kind == KindInvalidToken, got.Retry(), "retry")

			b, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(want, b), "body handed back differs: got %d bytes %q, want %d bytes %q", len(b), b, len(want), want)
			require.NoError(t, resp.Body.Close())
		})
	}
}

// Every fixture file is in the table and every table entry has a file.
func TestClassifyFixturesAllCovered(t *testing.T) {
	ents, err := os.ReadDir(fixtureDir)
	require.NoError(t, err)
	var files []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".http") {
			files = append(files, e.Name())
		}
	}
	var listed []string
	for _, tc := range classifyCases {
		listed = append(listed, tc.file)
	}
	assert.ElementsMatch(t, files, listed)
}

// The rules that say "never refresh", spelled out.
func TestClassifyNeverRetry(t *testing.T) {
	for _, f := range []string{
		"24-google-insufficient-scope.http", "62-synthetic-insufficient-scope-401.http",
		"29-azure-cae-insufficient-claims.http", "30-azure-cae-revocation.http",
		"31-azure-cae-invalid-token-with-claims.http", "35-keyvault-discovery-challenge.http",
		"50-synthetic-ec2-requestexpired.http", "51-synthetic-s3-requesttimetooskewed.http",
		"57-synthetic-plain-403.http", "58-synthetic-plain-500.http", "59-synthetic-sts-accessdenied.http",
		"17-apigateway-message-only.http", "21-s3-head-400-nobody.http", "56-synthetic-nested-type-not-counted.http",
	} {
		method := http.MethodGet
		if strings.Contains(f, "-head-") {
			method = http.MethodHead
		}
		resp, _ := loadFixture(t, f, method)
		var cl Classifier
		assert.False(t, cl.ClassifyResponse(resp, true).Retry(), f)
	}
}

func TestClassifyExtraCodes(t *testing.T) {
	for _, extra := range []string{"MyCustomExpired", "mycustomexpired", "MYCUSTOMEXPIRED"} {
		resp, want := loadFixture(t, "64-synthetic-mycustomexpired.http", http.MethodGet)
		cl := Classifier{Extra: []string{"SomethingElse", extra}}
		got := cl.ClassifyResponse(resp, true)
		assert.Equal(t, KindInvalidToken, got.Kind, extra)
		assert.Equal(t, "MyCustomExpired", got.Code)
		assert.Equal(t, "json", got.Source)
		assert.True(t, got.Retry())
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, want, b)
	}
	// Extra codes also apply to the header and XML forms, after cleaning.
	cl := Classifier{Extra: []string{"MyCustomExpired"}}
	h := http.Header{}
	h.Set("X-Amzn-Errortype", "MyCustomExpired:http://internal.amazon.com/coral/")
	assert.Equal(t, KindInvalidToken, cl.Classify(400, h, nil, true).Kind)
	assert.Equal(t, KindInvalidToken, cl.Classify(400, http.Header{}, []byte("<Error><Code>ns#MyCustomExpired</Code></Error>"), true).Kind)
	// The zero Classifier does not know it.
	var zero Classifier
	assert.Equal(t, KindOther, zero.Classify(400, h, nil, true).Kind)
}

// A bare 401 is an invalid token only when the request carried one.
func TestClassifyBare401NotCarried(t *testing.T) {
	for _, f := range []string{"22-rfc6750-no-error.http", "36-github-bad-credentials.http", "37-github-enterprise-must-authenticate.http"} {
		var cl Classifier
		resp, want := loadFixture(t, f, http.MethodGet)
		got := cl.ClassifyResponse(resp, false)
		assert.Equal(t, KindOther, got.Kind, f)
		assert.False(t, got.Retry(), f)
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		assert.Equal(t, want, b)

		resp, _ = loadFixture(t, f, http.MethodGet)
		assert.True(t, cl.ClassifyResponse(resp, true).Retry(), f)
	}
	var cl Classifier
	assert.False(t, cl.Classify(http.StatusUnauthorized, http.Header{}, nil, false).Retry())
	assert.True(t, cl.Classify(http.StatusUnauthorized, http.Header{}, nil, true).Retry())
}

// A HEAD response is judged on status and headers alone, even when the
// Body field is not empty.
func TestClassifyHeadIgnoresBody(t *testing.T) {
	req, _ := http.NewRequest(http.MethodHead, "https://s3.example.com/bucket", nil)
	body := []byte("<Error><Code>ExpiredToken</Code></Error>")
	resp := &http.Response{StatusCode: 400, Header: http.Header{}, Request: req, ContentLength: -1, Body: io.NopCloser(bytes.NewReader(body))}
	var cl Classifier
	got := cl.ClassifyResponse(resp, true)
	assert.Equal(t, KindOther, got.Kind)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, body, b)
}

// bigBody returns prefix, then filler up to n bytes in all, then suffix.
func bigBody(prefix, suffix string, n int) []byte {
	b := make([]byte, 0, n+len(suffix))
	b = append(b, prefix...)
	for len(b) < n {
		b = append(b, "abcdefghijklmnopqrstuvwxyz0123456789"[len(b)%36])
	}
	return append(b, suffix...)
}

// Only the first MaxBody bytes are looked at, and the caller still
// gets every byte, in order, whatever the Content-Length and read sizes.
func TestClassifyResponseLargeBody(t *testing.T) {
	cases := []struct {
		name string
		body []byte
		kind Kind
		code string
	}{
		// The code sits in the first 64 KiB: found by the streaming XML reader.
		{"code-first", bigBody("<Error><Code>ExpiredToken</Code><Message>", "</Message></Error>", 3*MaxBody), KindInvalidToken, "ExpiredToken"},
		// The code sits after the first 64 KiB: not looked at.
		{"code-after-limit", bigBody("<Error><Message>", "</Message><Code>ExpiredToken</Code></Error>", MaxBody+100), KindOther, ""},
		// JSON cut at 64 KiB does not parse: no code.
		{"json-cut", bigBody(`{"__type":"ExpiredTokenException","pad":"`, `"}`, MaxBody+1), KindOther, ""},
		// JSON just under the limit parses.
		{"json-fits", bigBody(`{"__type":"ExpiredTokenException","pad":"`, `"}`, MaxBody-2), KindInvalidToken, "ExpiredTokenException"},
	}
	readers := []struct {
		name string
		wrap func(io.Reader) io.Reader
	}{
		{"plain", func(r io.Reader) io.Reader { return r }},
		{"onebyte", iotest.OneByteReader},
		{"half", iotest.HalfReader},
		{"dataerr", iotest.DataErrReader},
	}
	for _, tc := range cases {
		for _, rd := range readers {
			for _, length := range []int64{-1, int64(len(tc.body))} {
				resp := &http.Response{
					StatusCode: 400, Header: http.Header{}, ContentLength: length,
					Body: io.NopCloser(rd.wrap(bytes.NewReader(tc.body))),
				}
				var cl Classifier
				// The subject is the size limit, not a stalled body: 64 KiB
				// one byte a read under -race can outlast BodyWait
				// on a loaded machine.
				got := cl.classifyResponse(resp, true, time.Minute)
				assert.Equal(t, tc.kind, got.Kind, "%s/%s/%d", tc.name, rd.name, length)
				assert.Equal(t, tc.code, got.Code, "%s/%s/%d", tc.name, rd.name, length)
				b, err := io.ReadAll(resp.Body)
				require.NoError(t, err)
				require.Equal(t, len(tc.body), len(b), "%s/%s/%d", tc.name, rd.name, length)
				require.True(t, bytes.Equal(tc.body, b), "%s/%s/%d: body changed", tc.name, rd.name, length)
			}
		}
	}
	// Classify on a slice longer than the limit looks at the first 64 KiB only.
	var cl Classifier
	assert.Equal(t, KindOther, cl.Classify(400, http.Header{}, cases[1].body, true).Kind)
	assert.Equal(t, KindInvalidToken, cl.Classify(400, http.Header{}, cases[0].body, true).Kind)
}

// A read error met while peeking reaches the caller after the bytes read
// before it, and Close reaches the original body.
func TestClassifyResponseReadError(t *testing.T) {
	boom := errors.New("boom")
	prefix := []byte(`{"__type":"ExpiredTokenException"`)
	closed := false
	resp := &http.Response{
		StatusCode: 400, Header: http.Header{}, ContentLength: -1,
		Body: closeFunc{io.MultiReader(bytes.NewReader(prefix), iotest.ErrReader(boom)), func() error { closed = true; return nil }},
	}
	var cl Classifier
	got := cl.ClassifyResponse(resp, true)
	assert.Equal(t, KindOther, got.Kind) // incomplete JSON
	b, err := io.ReadAll(resp.Body)
	assert.ErrorIs(t, err, boom)
	assert.Equal(t, prefix, b)
	require.NoError(t, resp.Body.Close())
	assert.True(t, closed)
}

// A body whose Read panics (a custom base transport's) is read while
// peeking on a goroutine of the classifier's, where a panic would end the
// program: the caller's Read gets it as an error instead, after the bytes
// read before it.
func TestClassifyResponseReadPanic(t *testing.T) {
	prefix := []byte(`{"__type":"Expired`)
	resp := &http.Response{
		StatusCode: 400, Header: http.Header{}, ContentLength: -1,
		Body: closeFunc{io.MultiReader(bytes.NewReader(prefix), panicReader{}), func() error { return nil }},
	}
	var cl Classifier
	assert.Equal(t, KindOther, cl.ClassifyResponse(resp, true).Kind)
	b, err := io.ReadAll(resp.Body)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "panic")
	assert.NotContains(t, err.Error(), "body-secret", "the panic value is not quoted")
	assert.Equal(t, prefix, b)
}

type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("body-secret") }

type closeFunc struct {
	io.Reader
	close func() error
}

func (c closeFunc) Close() error { return c.close() }

// Body that is nil or http.NoBody is left alone.
func TestClassifyResponseNoBody(t *testing.T) {
	var cl Classifier
	resp := &http.Response{StatusCode: 401, Header: http.Header{}}
	assert.True(t, cl.ClassifyResponse(resp, true).Retry())
	assert.Nil(t, resp.Body)
	resp = &http.Response{StatusCode: 401, Header: http.Header{}, Body: http.NoBody}
	assert.True(t, cl.ClassifyResponse(resp, true).Retry())
	assert.Equal(t, http.NoBody, resp.Body)
}

func TestClassifyCleanCode(t *testing.T) {
	for in, want := range map[string]string{
		"InvalidGreeting": "InvalidGreeting",
		"aws.protocoltests.json10#FooError:http://internal.amazon.com/coral/com.amazon.coral.validate/": "FooError",
		"FooError:http://internal.amazon.com/coral/com.amazon.coral.validate/":                          "FooError",
		"com.amazon.coral.service#ExpiredTokenException":                                                "ExpiredTokenException",
		"  ExpiredToken  ":               "ExpiredToken",
		"a#b#c":                          "c",
		"x:y#z":                          "x", // ':' first, then '#'
		"":                               "",
		strings.Repeat("A", 129):         "",
		strings.Repeat("A", 128):         strings.Repeat("A", 128),
		"ns#" + strings.Repeat("A", 128): strings.Repeat("A", 128),
	} {
		assert.Equal(t, want, cleanCode(in), "cleanCode(%q)", in)
	}
}

func TestClassifyParseBearerChallenge(t *testing.T) {
	cases := []struct {
		in        []string
		present   bool
		err       string
		claims    string
		discovery bool
	}{
		{[]string{`Bearer realm="example"`}, true, "", "", false},
		{[]string{`Bearer error="invalid_token"`}, true, "invalid_token", "", false},
		{[]string{`Bearer error=invalid_token`}, true, "invalid_token", "", false},
		{[]string{`Bearer error=Invalid_Token`}, true, "invalid_token", "", false},
		{[]string{`bearer   realm = "x" , error = "invalid_token"`}, true, "invalid_token", "", false},
		{[]string{`=Bearer realm="", authorization_uri="https://l/", error="insufficient_claims", claims="e30="`}, true, "insufficient_claims", "e30=", true},
		{[]string{`Bearer authorization="https://l/", resource="https://vault.azure.net"`}, true, "", "", true},
		{[]string{`Basic realm="x"`}, false, "", "", false},
		{[]string{`Basic realm="x", error="invalid_token"`}, false, "", "", false},
		{[]string{`Basic realm="x", Bearer error="invalid_token"`}, true, "invalid_token", "", false},
		{[]string{`Basic realm="x"`, `Bearer error="invalid_token"`}, true, "invalid_token", "", false},
		{[]string{`Bearer error="invalid_token", Basic error="insufficient_scope"`}, true, "invalid_token", "", false},
		{[]string{`Negotiate abc==, Bearer error="x\"y"`}, true, "x\"y", "", false},
		{[]string{`Bearer`}, true, "", "", false},
		{[]string{`Bearer error="unterminated`}, true, "unterminated", "", false},
		{[]string{``}, false, "", "", false},
		{nil, false, "", "", false},
	}
	for _, tc := range cases {
		c := parseBearerChallenge(tc.in)
		assert.Equal(t, tc.present, c.present, "%q present", tc.in)
		assert.Equal(t, tc.err, c.err, "%q err", tc.in)
		assert.Equal(t, tc.claims, c.claims, "%q claims", tc.in)
		assert.Equal(t, tc.discovery, c.discovery, "%q discovery", tc.in)
	}
}

func TestClassifyKindString(t *testing.T) {
	for k, want := range map[Kind]string{
		KindOther: "other", KindInvalidToken: "invalid_token", KindClockSkew: "clock_skew",
		KindInsufficientScope: "insufficient_scope", KindClaimsChallenge: "claims_challenge",
		KindChallenge: "challenge", KindAccessDenied: "access_denied", Kind(99): "Kind(99)", Kind(-1): "Kind(-1)",
	} {
		assert.Equal(t, want, k.String())
	}
}

// The verdict on one response must not depend on map iteration order.
func TestClassifyDeterministicCaseVariantKeys(t *testing.T) {
	body := []byte(`{"CODE":"AccessDenied","Code":"ExpiredToken","cOdE":"RequestExpired"}`)
	var cl Classifier
	first := cl.Classify(400, http.Header{}, body, true)
	for range 200 {
		got := cl.Classify(400, http.Header{}, body, true)
		require.Equal(t, first, got, "verdict must not depend on map order")
	}
}

// "Never refresh on 5xx", whatever code the body names.
func TestClassify5xxNeverRetry(t *testing.T) {
	var cl Classifier
	h := http.Header{}
	h.Set("X-Amzn-Errortype", "ExpiredTokenException")
	for _, tc := range []struct {
		status int
		h      http.Header
		body   string
	}{
		{500, http.Header{}, `{"__type":"com.amazon.coral.service#ExpiredTokenException"}`},
		{503, h, ``},
		{502, http.Header{}, `<Error><Code>InvalidToken</Code></Error>`},
	} {
		got := cl.Classify(tc.status, tc.h, []byte(tc.body), true)
		assert.False(t, got.Retry(), "status %d with code %q", tc.status, got.Code)
		assert.NotEmpty(t, got.Code, "the code is still reported")
	}
}
