package awsdiag

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/awscreds"
	"github.com/tokenmgr/tokenmgr/awscreds/ststest"
	"github.com/tokenmgr/tokenmgr/diagnose"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

const testRole = "arn:aws:iam::123456789012:role/app"

func mapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

// secretsOf lists the secret parts of every session srv issued.
func secretsOf(srv *ststest.Server) []string {
	var out []string
	for _, s := range srv.Sessions() {
		out = append(out, s.SecretAccessKey, s.SessionToken, s.WebIdentityToken)
	}
	return out
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

// oauthWebIdentity starts an OAuth token endpoint (the web identity
// issuer) and a test STS, and returns the variables of a configuration
// whose web identity token comes from the TOKENMGR_* OAuth client.
func oauthWebIdentity(t *testing.T, endpointVar string) (*tokenmgrtest.Server, *ststest.Server, map[string]string) {
	t.Helper()
	idp := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	t.Cleanup(idp.Close)
	srv := ststest.NewServer()
	t.Cleanup(srv.Close)
	return idp, srv, map[string]string{
		"AWS_ROLE_ARN": testRole, "AWS_REGION": "us-east-1", endpointVar: srv.URL,
		"TOKENMGR_TOKEN_URL": idp.TokenURL(), "TOKENMGR_CLIENT_ID": idp.ClientID,
		"TOKENMGR_CLIENT_SECRET": idp.ClientSecret, "TOKENMGR_STORE": "memory",
	}
}

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

// testJWT is an unsigned JWT with the claims a web identity carries.
func testJWT(exp time.Time) string {
	seg := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return seg(map[string]string{"alg": "RS256", "kid": "k"}) + "." +
		seg(map[string]any{"iss": "https://oidc.example.com", "aud": "sts.amazonaws.com", "sub": "system:serviceaccount:default:app", "exp": exp.Unix()}) +
		".c2lnbmF0dXJlLW5vdC1jaGVja2Vk"
}

// diagnoseEnv starts an STS and writes a web identity JWT expiring at exp.
func diagnoseEnv(t *testing.T, exp time.Time) (*ststest.Server, map[string]string, string) {
	srv := ststest.NewServer()
	t.Cleanup(srv.Close)
	file := filepath.Join(t.TempDir(), "token")
	wit := testJWT(exp)
	require.NoError(t, os.WriteFile(file, []byte(wit), 0o600))
	return srv, map[string]string{
		"AWS_ROLE_ARN": testRole, "AWS_WEB_IDENTITY_TOKEN_FILE": file, "AWS_REGION": "us-east-1",
		"AWS_ENDPOINT_URL_STS": srv.URL,
		"TOKENMGR_STORE":       "memory", // the stored credentials check opens it: not the user's keyring
	}, wit
}

func checksByName(t *testing.T, cs []diagnose.Check, secrets ...string) map[string]diagnose.Check {
	t.Helper()
	m := map[string]diagnose.Check{}
	var names []string
	for _, c := range cs {
		m[c.Name] = c
		names = append(names, c.Name)
		for _, s := range secrets {
			assert.NotContains(t, c.String(), s)
		}
	}
	assert.Equal(t, []string{"aws configuration", "web identity", "clock (STS)", "sts", "aws credentials"}, names)
	return m
}

func TestDiagnoseOK(t *testing.T) {
	srv, env, wit := diagnoseEnv(t, time.Now().Add(time.Hour))
	cs := Run(t.Context(), Options{Lookup: mapLookup(env), HTTPClient: srv.Client()})
	m := checksByName(t, cs, append(secretsOf(srv), wit)...)
	for _, c := range cs {
		assert.Equal(t, diagnose.OK, c.Status, "%s", c)
	}
	assert.Contains(t, m["web identity"].Message, "sts.amazonaws.com")
	assert.Contains(t, m["aws credentials"].Message, "123456789012")
	assert.EqualValues(t, 1, srv.AssumeCalls())
}

// A web identity token without an audience fails the web identity
// check: STS refuses it. Before, doctor passed it ("audience (none)").
func TestDiagnoseNoAudience(t *testing.T) {
	srv, env, _ := diagnoseEnv(t, time.Now().Add(time.Hour))
	seg := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	wit := seg(map[string]string{"alg": "RS256"}) + "." + seg(map[string]any{"iss": "https://oidc.example.com", "sub": "app", "exp": time.Now().Add(time.Hour).Unix()}) + ".c2ln"
	require.NoError(t, os.WriteFile(env["AWS_WEB_IDENTITY_TOKEN_FILE"], []byte(wit), 0o600))
	m := checksByName(t, Run(t.Context(), Options{Lookup: mapLookup(env), HTTPClient: srv.Client()}), wit)
	assert.Equal(t, diagnose.Fail, m["web identity"].Status)
	assert.Contains(t, m["web identity"].Message, "no aud claim")
	assert.Contains(t, m["web identity"].Hint, "audience")
}

// Against an S3-compatible STS without GetCallerIdentity (MinIO) a
// healthy set-up is not a failure: the check is a warning naming why.
// Before, doctor exited 1 on it ("aws credentials" FAIL, cause other).
func TestDiagnoseSTSWithoutGetCallerIdentity(t *testing.T) {
	srv, env, wit := diagnoseEnv(t, time.Now().Add(time.Hour))
	srv.NoGetCallerIdentity = true
	cs := Run(t.Context(), Options{Lookup: mapLookup(env), HTTPClient: srv.Client()})
	m := checksByName(t, cs, append(secretsOf(srv), wit)...)
	assert.Equal(t, diagnose.OK, m["sts"].Status)
	assert.Equal(t, diagnose.Warn, m["aws credentials"].Status, "%s", m["aws credentials"])
	assert.Contains(t, m["aws credentials"].Message, string(CauseUnsupported))
	assert.Contains(t, m["aws credentials"].Hint, "MinIO")
	r := diagnose.Report{}
	r.Add(cs...)
	assert.True(t, r.OK(), "a warning, not a failure")
}

// With STS, or the web identity issuer, refusing connections, doctor
// says what is down after a few refused attempts, not "waiting for a
// token: context deadline exceeded" at its Timeout (15 s before; the
// Timeout here is a minute, so a pass is no luck of timing).
func TestDiagnoseSTSOrIssuerDownFast(t *testing.T) {
	_, env, _ := diagnoseEnv(t, time.Now().Add(time.Hour))
	env["AWS_ENDPOINT_URL_STS"] = "http://" + refusedAddr(t)
	cs := Run(t.Context(), Options{Lookup: mapLookup(env), Timeout: time.Minute})
	m := checksByName(t, cs)
	assert.Equal(t, diagnose.Fail, m["sts"].Status)
	assert.Contains(t, m["sts"].Message, "cannot reach STS")
	assert.Contains(t, m["sts"].Message, "connection refused")
	assert.NotContains(t, m["sts"].Message, "deadline")

	_, _, vars := oauthWebIdentity(t, "AWS_ENDPOINT_URL_STS")
	vars["TOKENMGR_TOKEN_URL"] = "http://" + refusedAddr(t) + "/token"
	m = checksByName(t, Run(t.Context(), Options{Lookup: mapLookup(vars), Timeout: time.Minute}))
	assert.Equal(t, diagnose.Fail, m["web identity"].Status)
	assert.Contains(t, m["web identity"].Message, "connection refused")
	assert.NotContains(t, m["web identity"].Message, "deadline")
}

func TestDiagnoseWrongAudience(t *testing.T) {
	srv, env, wit := diagnoseEnv(t, time.Now().Add(time.Hour))
	srv.FailNext(ststest.ErrInvalidIdentityToken)
	m := checksByName(t, Run(t.Context(), Options{Lookup: mapLookup(env), HTTPClient: srv.Client()}), wit)
	assert.Equal(t, diagnose.Fail, m["sts"].Status)
	assert.Contains(t, m["sts"].Message, string(CauseWrongAudience))
	assert.Contains(t, m["sts"].Hint, "aud")
	assert.Equal(t, diagnose.Skip, m["aws credentials"].Status)
}

func TestDiagnoseExpiredWebIdentity(t *testing.T) {
	srv, env, wit := diagnoseEnv(t, time.Now().Add(-time.Minute))
	m := checksByName(t, Run(t.Context(), Options{Lookup: mapLookup(env), HTTPClient: srv.Client()}), wit)
	assert.Equal(t, diagnose.Fail, m["web identity"].Status)
	assert.Contains(t, m["web identity"].Message, "expired")
	assert.Equal(t, diagnose.OK, m["clock (STS)"].Status)
	assert.Equal(t, diagnose.Fail, m["sts"].Status)
	assert.Contains(t, m["sts"].Message, string(CauseWebIdentityExpired))
}

// This machine's clock 20 minutes behind STS's: STS sees the web identity
// as expired; the diagnosis puts it down to the clock, not the token.
func TestDiagnoseClockSkew(t *testing.T) {
	srv, env, wit := diagnoseEnv(t, time.Now().Add(10*time.Minute))
	srv.Now = func() time.Time { return time.Now().Add(20 * time.Minute) }
	m := checksByName(t, Run(t.Context(), Options{Lookup: mapLookup(env), HTTPClient: srv.Client()}), wit)
	assert.Equal(t, diagnose.OK, m["web identity"].Status, "by the local clock the token is fine")
	assert.Equal(t, diagnose.Fail, m["clock (STS)"].Status)
	assert.Regexp(t, `(19m59s|20m0s) behind`, m["clock (STS)"].Message, "the Date header has whole seconds")
	assert.Equal(t, diagnose.Fail, m["sts"].Status)
	assert.Contains(t, m["sts"].Message, string(CauseClockSkew))
	assert.Contains(t, m["sts"].Hint, "NTP")
}

func TestDiagnoseBadConfigAndOffline(t *testing.T) {
	cs := Run(t.Context(), Options{Lookup: mapLookup(map[string]string{"AWS_REGION": "us-east-1"})})
	m := checksByName(t, cs)
	assert.Equal(t, diagnose.Fail, m["aws configuration"].Status)
	assert.Contains(t, m["aws configuration"].Message, "AWS_ROLE_ARN")
	assert.Equal(t, diagnose.Skip, m["sts"].Status)

	srv, env, _ := diagnoseEnv(t, time.Now().Add(time.Hour))
	m = checksByName(t, Run(t.Context(), Options{Lookup: mapLookup(env), Offline: true}))
	assert.Equal(t, diagnose.OK, m["web identity"].Status)
	assert.Equal(t, diagnose.Skip, m["sts"].Status)
	assert.Zero(t, srv.AssumeCalls())
}

func TestExplain(t *testing.T) {
	sts := func(code, msg string) error {
		return fmt.Errorf("wrapped: %w", &awscreds.STSError{Code: code, Message: msg, StatusCode: 400})
	}
	svc := func(code string) error { return fmt.Errorf("op: %w", apiErr{code}) }
	for _, tc := range []struct {
		err  error
		skew time.Duration
		want Cause
	}{
		{sts("InvalidIdentityToken", "Incorrect token audience"), 0, CauseWrongAudience},
		{sts("InvalidIdentityToken", "No OpenIDConnect provider found in your account for https://x"), 0, CauseUnknownIssuer},
		{sts("InvalidIdentityToken", "bad signature"), 0, CauseInvalidWebIdentity},
		{sts("ExpiredTokenException", "Token expired"), 0, CauseWebIdentityExpired},
		{sts("ExpiredTokenException", "Token expired"), 20 * time.Minute, CauseClockSkew},
		{sts("AccessDenied", "Not authorized"), 0, CauseAccessDenied},
		{sts("IDPCommunicationError", "x"), 0, CauseIdPUnreachable},
		{sts("Throttling", "Rate exceeded"), 0, CauseThrottled},
		{svc("InvalidClientTokenId"), 0, CauseRevoked},
		{svc("InvalidAccessKeyId"), 0, CauseRevoked},
		{svc("ExpiredToken"), 0, CauseExpired},
		{svc("ExpiredToken"), -10 * time.Minute, CauseClockSkew},
		{svc("RequestExpired"), 0, CauseClockSkew},
		{svc("RequestTimeTooSkewed"), 0, CauseClockSkew},
		{errors.New("dial tcp: connection refused"), 0, CauseOther},
	} {
		x := Explain(tc.err, tc.skew)
		assert.Equal(t, tc.want, x.Cause, "%v", tc.err)
		if tc.want != CauseOther {
			assert.NotEmpty(t, x.Hint)
		}
	}
	assert.Contains(t, Explain(sts("ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."), 0).Hint, "TOKENMGR_AWS_DURATION")
	assert.Contains(t, Explain(sts("RegionDisabledException", "STS is not activated in this region"), 0).Hint, "activate")
	// MinIO's STS codes (cmd/sts-errors.go) get a cause and a hint, not
	// "other".
	for _, code := range []string{"InvalidParameterValue", "InvalidClientGrantsToken", "MissingParameter", "MalformedPolicyDocument",
		"InsecureConnection", "STSNotInitialized", "STSIAMNotInitialized", "InternalError"} {
		x := Explain(sts(code, "m"), 0)
		assert.NotEqual(t, CauseOther, x.Cause, code)
		assert.NotEmpty(t, x.Hint, code)
	}
	assert.Equal(t, CauseUnsupported, Explain(svc("NotImplemented"), 0).Cause)
	assert.Equal(t, Explanation{}, Explain(nil, 0))
	assert.Contains(t, Explain(svc("ExpiredToken"), -10*time.Minute).Hint, "10m0s ahead of AWS's")
}

type apiErr struct{ code string }

func (e apiErr) Error() string        { return e.code }
func (e apiErr) ErrorCode() string    { return e.code }
func (e apiErr) ErrorMessage() string { return "message" }

// FuzzSTSErrorAnswer sends whatever STS might answer through the SDK's
// deserializer, a Provider's error handling and Explain: never a panic,
// never the web identity token in the error, always an explanation; a
// success has bounded, expiring credentials.
func FuzzSTSErrorAnswer(f *testing.F) {
	f.Add(403, []byte(`<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code><Message>Incorrect token audience</Message></Error><RequestId>x</RequestId></ErrorResponse>`))
	f.Add(400, []byte(`<ErrorResponse><Error><Code>ExpiredTokenException</Code><Message>web-identity-secret</Message></Error></ErrorResponse>`))
	f.Add(200, []byte(`<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>A</AccessKeyId></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>`))
	f.Add(500, []byte(`not xml`))
	f.Add(429, []byte(``))
	f.Add(200, []byte(assumeAnswer("ASIAEXAMPLE", "secret", "session", "0001-01-01T00:00:00Z")))
	f.Add(200, []byte(assumeAnswer("ASIAEXAMPLE", "secret", "session", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))))
	f.Add(403, []byte(stsErrorAnswer("AccessDenied", "line&#10;forged&#x2028;"+strings.Repeat("x", 2000))))
	var mu sync.Mutex
	var status int
	var body []byte
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		w.Write(body)
	})
	file := filepath.Join(f.TempDir(), "t")
	require.NoError(f, os.WriteFile(file, []byte("web-identity-secret"), 0o600))
	cfg := awscreds.Config{RoleARN: testRole, RoleSessionName: "fuzz", WebIdentityTokenFile: file, Region: "us-east-1",
		STSEndpoint: "http://localhost", HTTPClient: &http.Client{Transport: ststest.HandlerTransport(h)}}
	f.Fuzz(func(t *testing.T, st int, b []byte) {
		if st < 200 || st > 599 {
			return
		}
		mu.Lock()
		status, body = st, b
		mu.Unlock()
		p, err := awscreds.New(cfg) // a new one each time: no failure held
		require.NoError(t, err)
		defer p.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond) // no retries of a 5xx
		defer cancel()
		creds, err := p.Retrieve(ctx)
		if err == nil {
			require.NotEmpty(t, creds.SessionToken, "success without complete credentials")
			require.True(t, creds.CanExpire, "success without complete credentials")
			require.True(t, creds.Expires.After(time.Now()) && time.Until(creds.Expires) <= 36*time.Hour, "expiry %v taken", creds.Expires)
			require.LessOrEqual(t, len(creds.SessionToken), 16<<10)
			return
		}
		require.NotContains(t, err.Error(), "web-identity-secret", "the error shows the web identity token")
		require.LessOrEqual(t, len(err.Error()), 2<<10, "a long error")
		require.NotContains(t, err.Error(), "\n", "an error on more than one line")
		x := Explain(err, 0)
		require.NotEmpty(t, x.Message, "no explanation for %v", err)
		require.NotEqual(t, CauseNone, x.Cause, "no explanation for %v", err)
	})
}
