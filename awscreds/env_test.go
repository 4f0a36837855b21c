package awscreds

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/awscreds/ststest"
	"github.com/tokenmgr/tokenmgr/envconfig"
)

func mapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestReadEnv(t *testing.T) {
	e, err := ReadEnv(mapLookup(map[string]string{
		"AWS_ROLE_ARN": testRole, "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token",
		"AWS_ROLE_SESSION_NAME": "ci", "AWS_DEFAULT_REGION": "eu-west-1",
		"AWS_ENDPOINT_URL": "https://sts.example.com", "AWS_ENDPOINT_URL_STS": "https://sts.eu-west-1.amazonaws.com",
		"TOKENMGR_AWS_DURATION": "30m", "TOKENMGR_AWS_KEY": "ci",
	}))
	require.NoError(t, err)
	assert.Equal(t, testRole, e.RoleARN)
	assert.Equal(t, "/var/run/token", e.WebIdentityTokenFile)
	assert.Equal(t, "ci", e.RoleSessionName)
	assert.Equal(t, "eu-west-1", e.Region)
	assert.Equal(t, "https://sts.eu-west-1.amazonaws.com", e.STSEndpoint, "AWS_ENDPOINT_URL_STS wins")
	assert.Equal(t, 30*time.Minute, e.Duration)
	assert.Equal(t, "ci", e.Key)

	e, err = ReadEnv(mapLookup(map[string]string{"AWS_ROLE_ARN": testRole, "AWS_REGION": "us-east-2", "AWS_DEFAULT_REGION": "eu-west-1"}))
	require.NoError(t, err)
	assert.Equal(t, "us-east-2", e.Region, "AWS_REGION wins")
}

func TestReadEnvErrorsNameTheVariable(t *testing.T) {
	ok := map[string]string{"AWS_ROLE_ARN": testRole, "AWS_REGION": "us-east-1"}
	for name, val := range map[string]string{
		"AWS_ROLE_ARN":          "not-an-arn",
		"AWS_ROLE_SESSION_NAME": "has space",
		"AWS_REGION":            "Europe",
		"AWS_ENDPOINT_URL_STS":  "http://sts.example.com",
		"AWS_ENDPOINT_URL":      "::",
		"TOKENMGR_AWS_DURATION": "5m",
		"TOKENMGR_AWS_KEY":      "a\x01b",
	} {
		t.Run(name, func(t *testing.T) {
			m := map[string]string{}
			for k, v := range ok {
				m[k] = v
			}
			m[name] = val
			_, err := ReadEnv(mapLookup(m))
			var ee *envconfig.Error
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, name, ee.Var)
		})
	}
	_, err := ReadEnv(mapLookup(map[string]string{"AWS_REGION": "us-east-1"}))
	assert.ErrorContains(t, err, "AWS_ROLE_ARN")
	_, err = ReadEnv(mapLookup(map[string]string{"AWS_ROLE_ARN": testRole}))
	assert.ErrorContains(t, err, "AWS_REGION")
}

// With a token file and TOKENMGR_STORE=file, the credentials go to the
// encrypted file; a second Provider from the same environment adopts them.
func TestNewProviderFromEnvTokenFile(t *testing.T) {
	srv := ststest.NewServer()
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(tok, []byte("web-identity"), 0o600))
	env := map[string]string{
		"AWS_ROLE_ARN": testRole, "AWS_WEB_IDENTITY_TOKEN_FILE": tok, "AWS_REGION": "us-east-1",
		"AWS_ENDPOINT_URL_STS": srv.URL, "TOKENMGR_STORE": "file",
		"TOKENMGR_STORE_PATH": filepath.Join(dir, "store"), "TOKENMGR_STORE_PASSPHRASE": "pw",
		"TOKENMGR_TOKEN_URL": "::bad, but not read with a token file",
	}
	for range 2 {
		e, err := ReadEnv(mapLookup(env))
		require.NoError(t, err)
		p, err := e.NewProvider(t.Context())
		require.NoError(t, err)
		_, err = p.Retrieve(t.Context())
		require.NoError(t, err)
		require.NoError(t, p.Close())
	}
	assert.EqualValues(t, 1, srv.AssumeCalls())
	assert.FileExists(t, filepath.Join(dir, "store"))
}

// Without a token file, the web identity token comes from the TOKENMGR_*
// OAuth configuration.
func TestNewProviderFromEnvOAuth(t *testing.T) {
	idp, srv, env := oauthWebIdentity(t, "AWS_ENDPOINT_URL")
	srv.SetCheckWebIdentity(func(tok string) *ststest.Error {
		if !idp.Valid(tok) {
			return ststest.ErrInvalidIdentityToken
		}
		return nil
	})
	e, err := ReadEnv(mapLookup(env))
	require.NoError(t, err)
	p, err := e.NewProvider(t.Context())
	require.NoError(t, err)
	_, err = p.Retrieve(t.Context())
	require.NoError(t, err)
	require.NoError(t, p.Close())
	assert.EqualValues(t, 1, idp.TokenRequests.Load())
	assert.EqualValues(t, 1, srv.AssumeCalls())

	delete(env, "TOKENMGR_CLIENT_ID")
	e, err = ReadEnv(mapLookup(env))
	require.NoError(t, err)
	_, err = e.NewProvider(t.Context())
	var ee *envconfig.Error
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "TOKENMGR_CLIENT_ID", ee.Var)
	assert.Contains(t, err.Error(), "AWS_WEB_IDENTITY_TOKEN_FILE")
}

func FuzzReadEnv(f *testing.F) {
	f.Add(testRole, "/t", "s", "us-east-1", "", "https://sts.example.com", "", "1h", "k")
	f.Add("arn:aws:iam::1:role/x", "", "", "", "eu-west-1", "", "http://127.0.0.1:1", "15m", "")
	f.Add("", "", "a b", "X", "", "::", "", "x", "\x00")
	f.Fuzz(func(t *testing.T, arn, file, session, region, defRegion, stsURL, url, dur, key string) {
		vals := []string{arn, file, session, region, defRegion, stsURL, url, dur, key}
		m := map[string]string{}
		for i, n := range EnvVars {
			if vals[i] != "" {
				m[n] = vals[i]
			}
		}
		e, err := ReadEnv(mapLookup(m))
		if err != nil {
			var ee *envconfig.Error
			require.ErrorAs(t, err, &ee)
			require.Contains(t, err.Error(), ee.Var, "the error names its variable")
			if ee.Var != "AWS_ROLE_ARN" && ee.Var != "AWS_REGION" {
				require.Contains(t, m, ee.Var, "the error names a variable that is not set")
			}
			return
		}
		require.NotEmpty(t, e.RoleARN, "accepted an incomplete environment: %+v", e)
		require.False(t, e.Region == "" && e.STSEndpoint == "", "accepted an incomplete environment: %+v", e)
		// What ReadEnv accepts, New accepts too (bar the web identity).
		e.WebIdentityTokenFile = "/t"
		p, err := New(Config{RoleARN: e.RoleARN, RoleSessionName: e.RoleSessionName, WebIdentityTokenFile: "/t",
			Region: e.Region, STSEndpoint: e.STSEndpoint, Duration: e.Duration, Key: e.Key})
		require.NoError(t, err, "ReadEnv accepted what New refuses")
		p.Close()
	})
}

func TestEnvDocsCoverEnvVars(t *testing.T) {
	var names []string
	for _, d := range EnvDocs {
		names = append(names, d.Name)
		assert.NotEmpty(t, d.Doc)
	}
	assert.Equal(t, EnvVars, names, "EnvDocs must document EnvVars, in order")
}
