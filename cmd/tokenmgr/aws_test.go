package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/awscreds/ststest"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

const awsRole = "arn:aws:iam::123456789012:role/app"

// awsVars starts an STS and returns the variables for the CLI to use it,
// with a web identity token file and an encrypted file store.
func awsVars(t *testing.T) (*ststest.Server, vars) {
	t.Helper()
	srv := ststest.NewServer()
	t.Cleanup(srv.Close)
	tok := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tok, []byte("web-identity-token"), 0o600))
	return srv, fileStoreVars(t).with(
		"AWS_ROLE_ARN", awsRole, "AWS_WEB_IDENTITY_TOKEN_FILE", tok,
		"AWS_REGION", "us-east-1", "AWS_ENDPOINT_URL_STS", srv.URL)
}

type processJSON struct {
	Version                                   int
	AccessKeyID                               string `json:"AccessKeyId"`
	SecretAccessKey, SessionToken, Expiration string
}

// The real processcreds provider of aws-sdk-go-v2 runs the built CLI; the
// credentials it reads sign a GetCallerIdentity the test STS verifies.
func TestAWSCredentialProcessWithSDK(t *testing.T) {
	srv, env := awsVars(t)
	for k, v := range env {
		t.Setenv(k, v)
	}
	prov := processcreds.NewProvider(binPath+" aws credential-process", func(o *processcreds.Options) { o.Timeout = time.Minute })
	creds, err := prov.Retrieve(t.Context())
	require.NoError(t, err)
	sess := srv.Sessions()
	require.Len(t, sess, 1)
	assert.Equal(t, sess[0].AccessKeyID, creds.AccessKeyID)
	assert.Equal(t, sess[0].SecretAccessKey, creds.SecretAccessKey)
	assert.Equal(t, sess[0].SessionToken, creds.SessionToken)
	assert.True(t, creds.CanExpire)
	assert.WithinDuration(t, sess[0].Expiration, creds.Expires, time.Second)

	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), Credentials: aws.NewCredentialsCache(prov)}
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	require.NoError(t, err)
	assert.Equal(t, "123456789012", aws.ToString(out.Account))
	assert.EqualValues(t, 1, srv.SignedOK())

	// A second run takes them from the store.
	creds2, err := processcreds.NewProvider(binPath + " aws credential-process").Retrieve(t.Context())
	require.NoError(t, err)
	assert.Equal(t, creds.AccessKeyID, creds2.AccessKeyID)
	assert.EqualValues(t, 1, srv.AssumeCalls())
}

// Many processes started at once make one STS call between them, through
// the store's lock, and print the same credentials.
func TestAWSCredentialProcessManyProcesses(t *testing.T) {
	srv, env := awsVars(t)
	sec := &secrets{}
	const n = 6
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = exe(t, sec, env, "aws", "credential-process") })
	}
	wg.Wait()
	var first processJSON
	for i, r := range results {
		require.Equal(t, 0, r.code, "%v", r)
		var pj processJSON
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &pj))
		assert.Equal(t, 1, pj.Version)
		if i == 0 {
			first = pj
		}
		assert.Equal(t, first, pj)
		_, err := time.Parse(time.RFC3339, pj.Expiration)
		assert.NoError(t, err)
	}
	assert.EqualValues(t, 1, srv.AssumeCalls())
	assert.NotEmpty(t, first.SecretAccessKey)
}

// An STS refusal is one line on stderr naming the code, exit 1, and no
// secret anywhere.
func TestAWSCredentialProcessSTSError(t *testing.T) {
	srv, env := awsVars(t)
	srv.FailNext(ststest.ErrInvalidIdentityToken)
	sec := &secrets{}
	sec.add("web-identity-token")
	r := exe(t, sec, env, "aws", "credential-process")
	assert.Equal(t, 1, r.code, "%v", r)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, "InvalidIdentityToken")
	assert.Contains(t, r.stderr, "tokenmgr aws credential-process:")

	r = exe(t, sec, env.without("AWS_ROLE_ARN"), "aws", "credential-process")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "AWS_ROLE_ARN")

	r = runIn(env, "aws", "credential-process", "extra")
	assert.Equal(t, 2, r.code)
	r = runIn(env, "aws", "nope")
	assert.Equal(t, 2, r.code)
	assert.Contains(t, r.stderr, "unknown command")
}

// doctor with AWS_ROLE_ARN set adds the AWS checks; with a token file and
// no OAuth configuration, they are all it runs.
func TestDoctorAWS(t *testing.T) {
	srv, env := awsVars(t)
	sec := &secrets{}
	sec.add("web-identity-token")
	sec.watch(func() []string {
		var s []string
		for _, x := range srv.Sessions() {
			s = append(s, x.SecretAccessKey, x.SessionToken)
		}
		return s
	})
	r := exe(t, sec, env, "doctor")
	assert.Equal(t, 0, r.code, "%v", r)
	for _, name := range []string{"aws configuration", "web identity", "clock (STS)", "sts", "aws credentials"} {
		assert.Contains(t, r.stdout, name)
	}
	assert.NotContains(t, r.stdout, "TOKENMGR_TOKEN_URL")

	srv.FailNext(ststest.ErrInvalidIdentityToken)
	r = exe(t, sec, env, "doctor")
	assert.Equal(t, 1, r.code, "%v", r)
	assert.Contains(t, r.stdout, "wrong_audience")
	assert.Contains(t, r.stdout, "aud claim")
}

// --key names the AWS credentials (TOKENMGR_AWS_KEY) only: without a token
// file the web identity token is an OAuth credential of its own, kept under
// TOKENMGR_KEY. Were both saved under the one name, each would overwrite
// the other in the store, and a rotated refresh token would be lost: the
// next "tokenmgr token" would redeem the seed the endpoint rotated away.
func TestAWSCredentialProcessKeyFlagNamesAWSCredentialsOnly(t *testing.T) {
	oauth, sec := oauthServer(t, tokenmgrtest.Options{Rotate: true})
	srv := ststest.NewServer()
	t.Cleanup(srv.Close)
	seed := oauth.IssueRefreshToken()
	sec.add(seed)
	env := fileStoreVars(t).with(oauthVars(oauth).flat()...).with(
		"TOKENMGR_REFRESH_TOKEN", seed,
		"AWS_ROLE_ARN", awsRole, "AWS_REGION", "us-east-1", "AWS_ENDPOINT_URL_STS", srv.URL)

	r := exe(t, sec, env, "aws", "credential-process", "--key", "app")
	wantCode(t, r, 0)
	var pj processJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &pj))
	assert.NotEmpty(t, pj.SessionToken)

	st, err := store.NewEncryptedFile(env["TOKENMGR_STORE_PATH"], []byte(passphrase))
	require.NoError(t, err)
	_, err = st.Load(t.Context(), "app")
	assert.NoError(t, err, "the AWS credentials are under --key")
	_, err = st.Load(t.Context(), "default")
	assert.NoError(t, err, "the OAuth credential is under TOKENMGR_KEY (default), not under --key")

	// The rotated refresh token was kept: the OAuth credential still works.
	r = exe(t, sec, env, "token")
	wantCode(t, r, 0)
	assert.EqualValues(t, 0, oauth.InvalidGrants.Load())
}

// --help says what --key and --store do: for "aws credential-process",
// --key is TOKENMGR_AWS_KEY; every command's --store takes redis too.
func TestHelpKeyAndStoreFlags(t *testing.T) {
	r := runIn(vars{}, "aws", "credential-process", "--help")
	wantCode(t, r, 0)
	assert.Contains(t, r.stdout, "overrides TOKENMGR_AWS_KEY")
	assert.NotContains(t, r.stdout, "overrides TOKENMGR_KEY")
	r = runIn(vars{}, "token", "--help")
	wantCode(t, r, 0)
	assert.Contains(t, r.stdout, "overrides TOKENMGR_KEY")
	assert.Contains(t, r.stdout, "memory or redis")
}

// When STS keeps failing with an error worth retrying until --timeout, the
// one line on stderr says what STS answered, not only that time ran out.
func TestAWSCredentialProcessTimeoutSaysWhy(t *testing.T) {
	srv, env := awsVars(t)
	srv.SetCheckWebIdentity(func(string) *ststest.Error {
		return &ststest.Error{Code: "ServiceUnavailable", Message: "STS is down for the test", Status: 503}
	})
	sec := &secrets{}
	sec.add("web-identity-token")
	r := exe(t, sec, env, "aws", "credential-process", "--timeout", "2s")
	wantCode(t, r, 1)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, "ServiceUnavailable")
	assert.Contains(t, r.stderr, "STS is down for the test")
	assert.Equal(t, 1, strings.Count(r.stderr, "\n"), "one line:\n%s", r.stderr)
	assert.Greater(t, srv.AssumeCalls(), int64(1), "retried")
}

// An STS endpoint that refuses the connection fails the command after a few
// attempts, as "token" does for its token URL, not after --timeout, with
// a hint about STS's endpoint.
func TestAWSCredentialProcessRefusedSTSFailsFast(t *testing.T) {
	t.Parallel()
	_, env := awsVars(t)
	env["AWS_ENDPOINT_URL_STS"] = "http://" + closedPort(t)
	sec := &secrets{}
	sec.add("web-identity-token")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r := exeCtx(ctx, t, sec, env, "aws", "credential-process", "--timeout", "60s")
	require.NoError(t, ctx.Err(), "still retrying after 20s (--timeout 60s):\n%s", r)
	wantCode(t, r, 1)
	assert.Empty(t, r.stdout)
	assert.Contains(t, r.stderr, "connection refused")
	assert.Contains(t, r.stderr, "(after 4 attempts)")
	// One hint, about STS's endpoint: not the OAuth one, which names
	// TOKENMGR_TOKEN_URL.
	assert.Equal(t, 1, strings.Count(r.stderr, "hint:"), r.stderr)
	assert.Contains(t, r.stderr, "hint: nothing listens there: check the host and port of the STS endpoint (AWS_ENDPOINT_URL_STS")
	assert.NotContains(t, r.stderr, "TOKENMGR_TOKEN_URL")
}

// A session revoked before it expires is served from the store by
// credential_process (its caller cannot tell tokenmgr): doctor tests the
// stored credentials before fetching new ones and names the way out,
// --force-refresh, which replaces them with one STS call.
func TestAWSCredentialProcessForceRefreshAfterRevocation(t *testing.T) {
	srv, env := awsVars(t)
	sec := &secrets{}
	sec.add("web-identity-token")
	sec.watch(func() []string {
		var s []string
		for _, x := range srv.Sessions() {
			s = append(s, x.SecretAccessKey, x.SessionToken)
		}
		return s
	})
	process := func(args ...string) processJSON {
		t.Helper()
		r := exe(t, nil, env, append([]string{"aws", "credential-process"}, args...)...) // its stdout is the secrets
		require.Equal(t, 0, r.code, "%v", r)
		var pj processJSON
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &pj))
		return pj
	}
	first := process()
	srv.Revoke(first.AccessKeyID)
	assert.Equal(t, first, process(), "served from the store until it expires")

	r := exe(t, sec, env, "doctor")
	assert.Equal(t, 1, r.code, "%v", r)
	wantCheck(t, r, "stored credentials", "FAIL", first.AccessKeyID, "revoked")
	assert.Contains(t, r.stdout, "tokenmgr aws credential-process --force-refresh")
	assert.Contains(t, r.stdout, "tokenmgr logout --key aws:"+awsRole)

	calls := srv.AssumeCalls()
	forced := process("--force-refresh")
	assert.NotEqual(t, first.AccessKeyID, forced.AccessKeyID)
	assert.Equal(t, calls+1, srv.AssumeCalls(), "one STS call for the forced refresh")
	assert.Equal(t, forced, process(), "the new credentials are stored")

	r = exe(t, sec, env, "doctor")
	assert.Equal(t, 0, r.code, "%v", r)
	wantCheck(t, r, "stored credentials", "OK", forced.AccessKeyID, "accepted")
}

// status of AWS credentials shows what they are (the access key ID, the
// expiry), not the OAuth rows: before, "scopes none reported" and
// "refresh token none" for credentials that have neither.
func TestStatusAWSCredentials(t *testing.T) {
	srv, env := awsVars(t)
	r := exe(t, nil, env, "aws", "credential-process")
	require.Equal(t, 0, r.code, "%v", r)
	sess := srv.Sessions()
	require.Len(t, sess, 1)
	sec := &secrets{}
	sec.add(sess[0].SecretAccessKey, sess[0].SessionToken)
	r = exe(t, sec, env, "status", "--key", "aws:"+awsRole)
	require.Equal(t, 0, r.code, "%v", r)
	assert.Contains(t, r.stdout, "AWS temporary credentials, access key ID "+sess[0].AccessKeyID)
	assert.Contains(t, r.stdout, "expires")
	for _, oauthOnly := range []string{"scopes", "refresh token", "id token", "AWS4-HMAC-SHA256"} {
		assert.NotContains(t, r.stdout, oauthOnly)
	}
	r = exe(t, sec, env, "status", "--key", "aws:"+awsRole, "--json")
	require.Equal(t, 0, r.code, "%v", r)
	var js statusJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &js))
	assert.Equal(t, sess[0].AccessKeyID, js.AccessKeyID)
	assert.Equal(t, "AWS credentials", js.Holds)
}
