package awscreds

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/awscreds/ststest"
	"github.com/tokenmgr/tokenmgr/classify"
)

// assumeAnswer is an AssumeRoleWithWebIdentity answer with the given
// credential parts, as STS writes it.
func assumeAnswer(id, secret, session, expiration string) string {
	return `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleWithWebIdentityResult><Credentials>` +
		`<SessionToken>` + session + `</SessionToken><SecretAccessKey>` + secret + `</SecretAccessKey>` +
		`<Expiration>` + expiration + `</Expiration><AccessKeyId>` + id + `</AccessKeyId>` +
		`</Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`
}

func stsErrorAnswer(code, msg string) string {
	return `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>` + code +
		`</Code><Message>` + msg + `</Message></Error><RequestId>r</RequestId></ErrorResponse>`
}

// Odd STS answers are refused with a bounded error, not taken: an
// Expiration of 0001-01-01 (credentials that would never be replaced), a
// 10 MiB error message (kept whole in Error() and printed), a 10 MiB or
// 100 KiB session token. Before, the first two were served or printed
// whole and the tokens accepted.
func TestSTSOddAnswersRefused(t *testing.T) {
	big := strings.Repeat("A", 10<<20)
	later := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for _, tc := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"expiration 0001-01-01", assumeAnswer("ASIAEXAMPLE", "secret", "session", "0001-01-01T00:00:00Z"), 200, "expired"},
		{"expiration in 9999", assumeAnswer("ASIAEXAMPLE", "secret", "session", "9999-12-31T23:59:59Z"), 200, "36 hours"},
		{"10 MiB message", stsErrorAnswer("AccessDenied", big), 403, "larger than 1024 KiB"},
		{"500 KiB message", stsErrorAnswer("AccessDenied", big[:500<<10]), 403, "AccessDenied: AAAA"},
		{"control characters", stsErrorAnswer("AccessDenied", "line&#10;forged&#x2028;"), 403, `line\nforged\u2028`},
		{"10 MiB session token", assumeAnswer("ASIAEXAMPLE", "secret", big, later), 200, "larger than 1024 KiB"},
		{"100 KiB session token", assumeAnswer("ASIAEXAMPLE", "secret", big[:100<<10], later), 200, "SessionToken of 100 KiB"},
		{"key ID not a word", assumeAnswer("ASIA EXAMPLE", "secret", "session", later), 200, "AccessKeyId"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/xml")
				w.WriteHeader(tc.status)
				fmt.Fprint(w, tc.body)
			})
			var logs bytes.Buffer
			file := filepath.Join(t.TempDir(), "token")
			require.NoError(t, os.WriteFile(file, []byte("web-identity-token"), 0o600))
			p, err := New(Config{RoleARN: testRole, WebIdentityTokenFile: file, Region: "us-east-1", STSEndpoint: "http://localhost",
				HTTPClient: &http.Client{Transport: ststest.HandlerTransport(h)},
				Logger:     slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
			require.NoError(t, err)
			defer p.Close()
			_, err = p.Retrieve(t.Context())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.Less(t, len(err.Error()), 1<<10, "the error is one short line")
			assert.NotContains(t, err.Error(), "\n")
			assert.Less(t, logs.Len(), 16<<10, "the logs are short")
			if tc.status == 200 || strings.Contains(tc.want, "larger") {
				assert.True(t, errors.Is(err, tokenmgr.ErrBadTokenResponse), "%v", err)
			}
			assert.EqualValues(t, 1, p.Stats().Fetches+p.Stats().FetchErrors, "refused at once, not retried")
		})
	}
}

// refusedAddr is a loopback address where nothing listens.
func refusedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// With STS down on an http URL the error says STS and what the connection
// did, counted once: before, "tokenmgr: token endpoint: operation error
// STS: AssumeRoleWithWebIdentity, https response error StatusCode: 0,
// RequestID: , request send failed, Post …".
func TestSTSDownSaysSTS(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte("web-identity-token"), 0o600))
	p, err := New(Config{RoleARN: testRole, WebIdentityTokenFile: file, Region: "us-east-1",
		STSEndpoint: "http://" + refusedAddr(t), RefusedAttempts: 4})
	require.NoError(t, err)
	defer p.Close()
	_, err = p.Retrieve(t.Context())
	require.Error(t, err)
	msg := err.Error()
	assert.Contains(t, msg, "STS")
	assert.Contains(t, msg, "connection refused")
	assert.NotContains(t, msg, "https response error")
	assert.NotContains(t, msg, "token endpoint")
	assert.Equal(t, 1, strings.Count(msg, "(after 4 attempts)"), msg)
	var te *tokenmgr.TokenError
	require.ErrorAs(t, err, &te)
	assert.Equal(t, classify.ConnectionRefused, te.NetworkFailure())
}

// With the web identity issuer down, its Client's count of attempts is
// said once: before, "… (after 4 attempts) (after 4 attempts)".
func TestIssuerDownAttemptsSaidOnce(t *testing.T) {
	_, _, vars := oauthWebIdentity(t, "AWS_ENDPOINT_URL_STS")
	vars["TOKENMGR_TOKEN_URL"] = "http://" + refusedAddr(t) + "/token"
	e, err := ReadEnv(mapLookup(vars))
	require.NoError(t, err)
	e.RefusedAttempts = 4
	p, err := e.NewProvider(t.Context())
	require.NoError(t, err)
	defer p.Close()
	_, err = p.Retrieve(t.Context())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "web identity")
	assert.Equal(t, 1, strings.Count(err.Error(), "attempts)"), err.Error())
}
