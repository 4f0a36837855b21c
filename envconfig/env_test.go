package envconfig

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

// Distinctive secret values: none may ever show up in an error or a log.
const (
	envSecret     = "s3cr3t-XYZ"
	envRefresh    = "rt-s3cr3t-RT9"
	envAccess     = "at-s3cr3t-AT7"
	envPassphrase = "pp-s3cr3t-PP5"
	envFileSecret = "s3cr3t-FROM-FILE"
)

var envSecretValues = []string{envSecret, envRefresh, envAccess, envPassphrase, envFileSecret}

func mapLookup(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// envFiles writes the files the cases refer to and returns their paths.
type envFiles struct {
	secret, secretCRLF, empty, dir, missing, passphrase string
}

func writeEnvFiles(t *testing.T) envFiles {
	t.Helper()
	d := t.TempDir()
	f := envFiles{
		secret:     filepath.Join(d, "secret"),
		secretCRLF: filepath.Join(d, "secret-crlf"),
		empty:      filepath.Join(d, "empty"),
		dir:        filepath.Join(d, "adir"),
		missing:    filepath.Join(d, "does-not-exist"),
		passphrase: filepath.Join(d, "passphrase"),
	}
	require.NoError(t, os.WriteFile(f.secret, []byte(envFileSecret+"\n"), 0o600))
	require.NoError(t, os.WriteFile(f.secretCRLF, []byte(envFileSecret+"\r\n\n"), 0o600))
	require.NoError(t, os.WriteFile(f.empty, []byte("\n"), 0o600))
	require.NoError(t, os.Mkdir(f.dir, 0o700))
	require.NoError(t, os.WriteFile(f.passphrase, []byte(envPassphrase+"\n"), 0o600))
	return f
}

// cc is a valid client credentials configuration plus the given overrides
// (an empty value deletes the variable).
func cc(over map[string]string) map[string]string {
	m := map[string]string{
		"TOKENMGR_TOKEN_URL":     "https://auth.example.com/oauth2/token",
		"TOKENMGR_CLIENT_ID":     "my-client",
		"TOKENMGR_CLIENT_SECRET": envSecret,
	}
	for k, v := range over {
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

func TestReadEnvGood(t *testing.T) {
	files := writeEnvFiles(t)
	cases := []struct {
		name  string
		vars  map[string]string
		check func(t *testing.T, e *Env)
	}{
		{"client-credentials", cc(nil), func(t *testing.T, e *Env) {
			assert.Equal(t, "https://auth.example.com/oauth2/token", e.TokenURL)
			assert.Equal(t, "my-client", e.ClientID)
			assert.Equal(t, envSecret, e.ClientSecret)
			assert.Empty(t, e.RefreshToken)
			assert.Empty(t, e.AccessToken)
			assert.Equal(t, oauth2.AuthStyleAutoDetect, e.AuthStyle)
			assert.Equal(t, DefaultKey, e.Key)
			assert.Equal(t, "auto", e.Store)
			assert.Zero(t, e.RefreshBefore)
			assert.Zero(t, e.ExpiryDelta)
			assert.Empty(t, e.Scopes)
			assert.Equal(t, []string{"TOKENMGR_TOKEN_URL", "TOKENMGR_CLIENT_ID", "TOKENMGR_CLIENT_SECRET"}, e.Set)
		}},
		{"refresh-token-public-client", cc(map[string]string{"TOKENMGR_CLIENT_SECRET": "", "TOKENMGR_REFRESH_TOKEN": envRefresh}), func(t *testing.T, e *Env) {
			assert.Equal(t, envRefresh, e.RefreshToken)
			assert.Empty(t, e.ClientSecret)
		}},
		{"refresh-token-with-secret", cc(map[string]string{"TOKENMGR_REFRESH_TOKEN": envRefresh}), func(t *testing.T, e *Env) {
			assert.Equal(t, envRefresh, e.RefreshToken)
			assert.Equal(t, envSecret, e.ClientSecret)
		}},
		{"static-access-token", map[string]string{"TOKENMGR_ACCESS_TOKEN": envAccess}, func(t *testing.T, e *Env) {
			assert.Equal(t, envAccess, e.AccessToken)
			assert.Empty(t, e.TokenURL)
			assert.Empty(t, e.ClientID)
		}},
		{"scopes-spaces-and-commas", cc(map[string]string{"TOKENMGR_SCOPES": " read write,admin , ,extra\tmore\nlast "}), func(t *testing.T, e *Env) {
			assert.Equal(t, []string{"read", "write", "admin", "extra", "more", "last"}, e.Scopes)
		}},
		{"scope-url", cc(map[string]string{"TOKENMGR_SCOPES": "https://graph.microsoft.com/.default"}), func(t *testing.T, e *Env) {
			assert.Equal(t, []string{"https://graph.microsoft.com/.default"}, e.Scopes)
		}},
		{"auth-style-header", cc(map[string]string{"TOKENMGR_AUTH_STYLE": "header"}), func(t *testing.T, e *Env) {
			assert.Equal(t, oauth2.AuthStyleInHeader, e.AuthStyle)
		}},
		{"auth-style-params-upper", cc(map[string]string{"TOKENMGR_AUTH_STYLE": " PARAMS "}), func(t *testing.T, e *Env) {
			assert.Equal(t, oauth2.AuthStyleInParams, e.AuthStyle)
		}},
		{"auth-style-auto", cc(map[string]string{"TOKENMGR_AUTH_STYLE": "Auto"}), func(t *testing.T, e *Env) {
			assert.Equal(t, oauth2.AuthStyleAutoDetect, e.AuthStyle)
		}},
		{"durations", cc(map[string]string{"TOKENMGR_REFRESH_BEFORE": "5m", "TOKENMGR_EXPIRY_DELTA": "1m30s"}), func(t *testing.T, e *Env) {
			assert.Equal(t, 5*time.Minute, e.RefreshBefore)
			assert.Equal(t, 90*time.Second, e.ExpiryDelta)
		}},
		{"duration-zero", cc(map[string]string{"TOKENMGR_REFRESH_BEFORE": "0", "TOKENMGR_EXPIRY_DELTA": "0s"}), func(t *testing.T, e *Env) {
			assert.Zero(t, e.RefreshBefore)
			assert.Zero(t, e.ExpiryDelta)
		}},
		{"secret-file-newline-trimmed", cc(map[string]string{"TOKENMGR_CLIENT_SECRET": "", "TOKENMGR_CLIENT_SECRET_FILE": files.secret}), func(t *testing.T, e *Env) {
			assert.Equal(t, envFileSecret, e.ClientSecret)
		}},
		{"secret-file-crlf-trimmed", cc(map[string]string{"TOKENMGR_CLIENT_SECRET": "", "TOKENMGR_CLIENT_SECRET_FILE": files.secretCRLF}), func(t *testing.T, e *Env) {
			assert.Equal(t, envFileSecret, e.ClientSecret)
		}},
		{"http-loopback-v4", cc(map[string]string{"TOKENMGR_TOKEN_URL": "http://127.0.0.1:8080/token"}), func(t *testing.T, e *Env) {
			assert.Equal(t, "http://127.0.0.1:8080/token", e.TokenURL)
		}},
		{"http-localhost", cc(map[string]string{"TOKENMGR_TOKEN_URL": "http://localhost/token"}), nil},
		{"http-loopback-v6", cc(map[string]string{"TOKENMGR_TOKEN_URL": "http://[::1]:9000/token"}), nil},
		{"https-upper-scheme", cc(map[string]string{"TOKENMGR_TOKEN_URL": "HTTPS://auth.example.com/token"}), nil},
		{"values-trimmed", cc(map[string]string{"TOKENMGR_CLIENT_ID": "  my-client\n", "TOKENMGR_CLIENT_SECRET": "\t" + envSecret + " "}), func(t *testing.T, e *Env) {
			assert.Equal(t, "my-client", e.ClientID)
			assert.Equal(t, envSecret, e.ClientSecret)
		}},
		{"allowed-hosts", cc(map[string]string{"TOKENMGR_ALLOWED_HOSTS": "api.example.com, *.example.org,,other.example.net"}), func(t *testing.T, e *Env) {
			assert.Equal(t, []string{"api.example.com", "*.example.org", "other.example.net"}, e.AllowedHosts)
		}},
		{"allow-insecure-http", cc(map[string]string{"TOKENMGR_ALLOW_INSECURE_HTTP": "true"}), func(t *testing.T, e *Env) {
			assert.True(t, e.AllowInsecureHTTP)
		}},
		{"allow-insecure-http-false", cc(map[string]string{"TOKENMGR_ALLOW_INSECURE_HTTP": "0"}), func(t *testing.T, e *Env) {
			assert.False(t, e.AllowInsecureHTTP)
		}},
		{"store-file-with-passphrase-file", cc(map[string]string{"TOKENMGR_STORE": "FILE", "TOKENMGR_STORE_PATH": "/tmp/x/tokens.enc", "TOKENMGR_STORE_PASSPHRASE_FILE": files.passphrase}), func(t *testing.T, e *Env) {
			assert.Equal(t, "file", e.Store)
			assert.Equal(t, "/tmp/x/tokens.enc", e.StorePath)
			assert.Equal(t, []byte(envPassphrase), e.StorePassphrase)
		}},
		{"store-memory-passphrase", cc(map[string]string{"TOKENMGR_STORE": "memory", "TOKENMGR_STORE_PASSPHRASE": envPassphrase}), func(t *testing.T, e *Env) {
			assert.Equal(t, "memory", e.Store)
			assert.Equal(t, []byte(envPassphrase), e.StorePassphrase)
		}},
		{"store-keyring", cc(map[string]string{"TOKENMGR_STORE": "keyring"}), func(t *testing.T, e *Env) {
			assert.Equal(t, "keyring", e.Store)
		}},
		{"key", cc(map[string]string{"TOKENMGR_KEY": "prod/api"}), func(t *testing.T, e *Env) {
			assert.Equal(t, "prod/api", e.Key)
		}},
		{"audience", cc(map[string]string{"TOKENMGR_AUDIENCE": "https://api.example.com"}), func(t *testing.T, e *Env) {
			assert.Equal(t, "https://api.example.com", e.Audience)
		}},
		{"set-in-envvars-order", cc(map[string]string{"TOKENMGR_STORE": "memory", "TOKENMGR_SCOPES": "a"}), func(t *testing.T, e *Env) {
			assert.Equal(t, []string{"TOKENMGR_TOKEN_URL", "TOKENMGR_CLIENT_ID", "TOKENMGR_CLIENT_SECRET", "TOKENMGR_SCOPES", "TOKENMGR_STORE"}, e.Set)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Read(mapLookup(tc.vars), NeedCredential)
			require.NoError(t, err)
			require.NotNil(t, e)
			if tc.check != nil {
				tc.check(t, e)
			}
			assertEnvShowsNoSecret(t, e)
		})
	}
}

func assertEnvShowsNoSecret(t *testing.T, e *Env) {
	t.Helper()
	s := e.String()
	lv := e.LogValue().String()
	var sb strings.Builder
	slog.New(slog.NewTextHandler(&sb, nil)).Info("env", "env", e)
	js, err := json.Marshal(e)
	require.NoError(t, err)
	for _, sec := range envSecretValues {
		assert.NotContains(t, string(js), sec, "json.Marshal")
		assert.NotContains(t, s, sec, "String()")
		assert.NotContains(t, lv, sec, "LogValue()")
		assert.NotContains(t, sb.String(), sec, "slog output")
	}
	assert.True(t, strings.HasPrefix(s, "envconfig.Env{"), s)
}

func TestReadEnvBad(t *testing.T) {
	files := writeEnvFiles(t)
	cases := []struct {
		name    string
		vars    map[string]string
		wantVar string
		is      error // when set, errors.Is must hold
	}{
		{"nothing-set", map[string]string{}, "TOKENMGR_TOKEN_URL", nil},
		{"auth-style", cc(map[string]string{"TOKENMGR_AUTH_STYLE": "basic"}), "TOKENMGR_AUTH_STYLE", nil},
		{"refresh-before-negative", cc(map[string]string{"TOKENMGR_REFRESH_BEFORE": "-5m"}), "TOKENMGR_REFRESH_BEFORE", nil},
		{"refresh-before-garbage", cc(map[string]string{"TOKENMGR_REFRESH_BEFORE": "soon"}), "TOKENMGR_REFRESH_BEFORE", nil},
		{"refresh-before-no-unit", cc(map[string]string{"TOKENMGR_REFRESH_BEFORE": "300"}), "TOKENMGR_REFRESH_BEFORE", nil},
		{"expiry-delta-negative", cc(map[string]string{"TOKENMGR_EXPIRY_DELTA": "-1s"}), "TOKENMGR_EXPIRY_DELTA", nil},
		{"http-non-loopback", cc(map[string]string{"TOKENMGR_TOKEN_URL": "http://auth.example.com/token"}), "TOKENMGR_TOKEN_URL", nil},
		{"http-non-loopback-even-with-insecure", cc(map[string]string{"TOKENMGR_TOKEN_URL": "http://auth.example.com/token", "TOKENMGR_ALLOW_INSECURE_HTTP": "true"}), "TOKENMGR_TOKEN_URL", nil},
		{"http-loopback-lookalike", cc(map[string]string{"TOKENMGR_TOKEN_URL": "http://127.0.0.1.nip.io/token"}), "TOKENMGR_TOKEN_URL", nil},
		{"http-localhost-lookalike", cc(map[string]string{"TOKENMGR_TOKEN_URL": "http://localhost.evil.example/token"}), "TOKENMGR_TOKEN_URL", nil},
		{"ftp-scheme", cc(map[string]string{"TOKENMGR_TOKEN_URL": "ftp://auth.example.com/token"}), "TOKENMGR_TOKEN_URL", nil},
		{"relative-url", cc(map[string]string{"TOKENMGR_TOKEN_URL": "/oauth2/token"}), "TOKENMGR_TOKEN_URL", nil},
		{"not-a-url", cc(map[string]string{"TOKENMGR_TOKEN_URL": "https://exa mple.com/%zz"}), "TOKENMGR_TOKEN_URL", nil},
		{"secret-and-secret-file", cc(map[string]string{"TOKENMGR_CLIENT_SECRET_FILE": files.secret}), "TOKENMGR_CLIENT_SECRET_FILE", nil},
		{"secret-file-missing", cc(map[string]string{"TOKENMGR_CLIENT_SECRET": "", "TOKENMGR_CLIENT_SECRET_FILE": files.missing}), "TOKENMGR_CLIENT_SECRET_FILE", fs.ErrNotExist},
		{"secret-file-is-dir", cc(map[string]string{"TOKENMGR_CLIENT_SECRET": "", "TOKENMGR_CLIENT_SECRET_FILE": files.dir}), "TOKENMGR_CLIENT_SECRET_FILE", nil},
		{"secret-file-empty", cc(map[string]string{"TOKENMGR_CLIENT_SECRET": "", "TOKENMGR_CLIENT_SECRET_FILE": files.empty}), "TOKENMGR_CLIENT_SECRET_FILE", nil},
		{"secret-file-not-regular", cc(map[string]string{"TOKENMGR_CLIENT_SECRET": "", "TOKENMGR_CLIENT_SECRET_FILE": "/dev/zero"}), "TOKENMGR_CLIENT_SECRET_FILE", nil},
		{"secret-pasted-into-file-var", cc(map[string]string{"TOKENMGR_CLIENT_SECRET": "", "TOKENMGR_CLIENT_SECRET_FILE": envSecret}), "TOKENMGR_CLIENT_SECRET_FILE", fs.ErrNotExist},
		{"static-token-with-token-url", cc(map[string]string{"TOKENMGR_ACCESS_TOKEN": envAccess}), "TOKENMGR_ACCESS_TOKEN", nil},
		// A static token goes in "Authorization: Bearer <token>" as it is:
		// one that cannot is refused here, naming the variable, not at the
		// first request as an unusable "token response".
		{"static-token-with-bearer-prefix", map[string]string{"TOKENMGR_ACCESS_TOKEN": "Bearer " + envAccess}, "TOKENMGR_ACCESS_TOKEN", nil},
		{"static-token-inner-newline", map[string]string{"TOKENMGR_ACCESS_TOKEN": envAccess + "\nX-Evil: 1"}, "TOKENMGR_ACCESS_TOKEN", nil},
		{"static-token-not-b64token", map[string]string{"TOKENMGR_ACCESS_TOKEN": envAccess + "\"quoted\""}, "TOKENMGR_ACCESS_TOKEN", nil},
		{"missing-client-id", cc(map[string]string{"TOKENMGR_CLIENT_ID": ""}), "TOKENMGR_CLIENT_ID", nil},
		{"blank-client-id", cc(map[string]string{"TOKENMGR_CLIENT_ID": "   "}), "TOKENMGR_CLIENT_ID", nil},
		{"missing-client-secret", cc(map[string]string{"TOKENMGR_CLIENT_SECRET": ""}), "TOKENMGR_CLIENT_SECRET", nil},
		{"store", cc(map[string]string{"TOKENMGR_STORE": "s3"}), "TOKENMGR_STORE", nil},
		{"key-cache", cc(map[string]string{"TOKENMGR_KEY_CACHE": "0"}), "TOKENMGR_KEY_CACHE", nil},
		{"allowed-hosts-port", cc(map[string]string{"TOKENMGR_ALLOWED_HOSTS": "api.example.com:443"}), "TOKENMGR_ALLOWED_HOSTS", nil},
		{"allowed-hosts-url", cc(map[string]string{"TOKENMGR_ALLOWED_HOSTS": "ok.example.com,https://api.example.com/"}), "TOKENMGR_ALLOWED_HOSTS", nil},
		{"allowed-hosts-star", cc(map[string]string{"TOKENMGR_ALLOWED_HOSTS": "*"}), "TOKENMGR_ALLOWED_HOSTS", nil},
		{"allowed-hosts-inner-star", cc(map[string]string{"TOKENMGR_ALLOWED_HOSTS": "api.*.example.com"}), "TOKENMGR_ALLOWED_HOSTS", nil},
		{"allowed-hosts-userinfo", cc(map[string]string{"TOKENMGR_ALLOWED_HOSTS": "user@api.example.com"}), "TOKENMGR_ALLOWED_HOSTS", nil},
		{"allow-insecure-http", cc(map[string]string{"TOKENMGR_ALLOW_INSECURE_HTTP": "yes please"}), "TOKENMGR_ALLOW_INSECURE_HTTP", nil},
		{"key-control-char", cc(map[string]string{"TOKENMGR_KEY": "a\x01b"}), "TOKENMGR_KEY", nil},
		{"key-too-long", cc(map[string]string{"TOKENMGR_KEY": strings.Repeat("k", 129)}), "TOKENMGR_KEY", nil},
		{"utf8-secret", cc(map[string]string{"TOKENMGR_CLIENT_SECRET": envSecret + "\xff\xfe"}), "TOKENMGR_CLIENT_SECRET", nil},
		{"utf8-scopes", cc(map[string]string{"TOKENMGR_SCOPES": "read \xc3\x28"}), "TOKENMGR_SCOPES", nil},
		{"utf8-refresh-token", cc(map[string]string{"TOKENMGR_REFRESH_TOKEN": envRefresh + "\x80"}), "TOKENMGR_REFRESH_TOKEN", nil},
		{"passphrase-and-file", cc(map[string]string{"TOKENMGR_STORE_PASSPHRASE": envPassphrase, "TOKENMGR_STORE_PASSPHRASE_FILE": files.passphrase}), "TOKENMGR_STORE_PASSPHRASE_FILE", nil},
		{"passphrase-file-missing", cc(map[string]string{"TOKENMGR_STORE_PASSPHRASE_FILE": files.missing}), "TOKENMGR_STORE_PASSPHRASE_FILE", fs.ErrNotExist},
		// A bad setting with every secret set: the error still shows none.
		{"auth-style-all-secrets", cc(map[string]string{
			"TOKENMGR_AUTH_STYLE": "nope", "TOKENMGR_REFRESH_TOKEN": envRefresh,
			"TOKENMGR_ACCESS_TOKEN": envAccess, "TOKENMGR_STORE_PASSPHRASE": envPassphrase,
		}), "TOKENMGR_AUTH_STYLE", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := Read(mapLookup(tc.vars), NeedCredential)
			require.Error(t, err)
			assert.Nil(t, e)
			var ee *Error
			require.True(t, errors.As(err, &ee), "error %T %v is not an *Error", err, err)
			assert.Equal(t, tc.wantVar, ee.Var, "error: %v", err)
			assert.NotEmpty(t, ee.Problem)
			assert.Contains(t, err.Error(), tc.wantVar)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
			for _, sec := range envSecretValues {
				assert.NotContains(t, err.Error(), sec)
				assert.NotContains(t, ee.Problem, sec)
			}
			for k, v := range tc.vars {
				if IsSecret(k) && len(v) >= 8 {
					assert.NotContains(t, err.Error(), v, "value of %s echoed", k)
				}
			}
		})
	}
}

// With no lookup, ReadEnv reads the process environment.
func TestReadEnvNilLookupUsesEnviron(t *testing.T) {
	for _, n := range Vars {
		t.Setenv(n, "")
		os.Unsetenv(n)
	}
	t.Setenv("TOKENMGR_ACCESS_TOKEN", envAccess)
	e, err := Read(nil, NeedCredential)
	require.NoError(t, err)
	assert.Equal(t, envAccess, e.AccessToken)
}

func TestEnvIsSecretVar(t *testing.T) {
	for _, n := range []string{"TOKENMGR_CLIENT_SECRET", "TOKENMGR_REFRESH_TOKEN", "TOKENMGR_ACCESS_TOKEN", "TOKENMGR_STORE_PASSPHRASE"} {
		assert.True(t, IsSecret(n), n)
	}
	for _, n := range []string{"TOKENMGR_CLIENT_ID", "TOKENMGR_TOKEN_URL", "TOKENMGR_CLIENT_SECRET_FILE", "TOKENMGR_KEY"} {
		assert.False(t, IsSecret(n), n)
	}
	for n := range secretVars {
		assert.Contains(t, Vars, n)
	}
}

// LogValue and String must not show a password carried in the token URL's
// userinfo.
func TestEnvLogValueRedactsURLUserinfo(t *testing.T) {
	e, err := Read(mapLookup(cc(map[string]string{"TOKENMGR_TOKEN_URL": "https://client:" + envSecret + "@auth.example.com/token"})), NeedCredential)
	require.NoError(t, err)
	assert.NotContains(t, e.String(), envSecret)
	assert.NotContains(t, e.LogValue().String(), envSecret)
}

// A token URL with a port but no host name is not an absolute URL.
func TestReadEnvTokenURLWithoutHostName(t *testing.T) {
	for _, u := range []string{"https://:443/token", "https://:8443"} {
		_, err := Read(mapLookup(cc(map[string]string{"TOKENMGR_TOKEN_URL": u})), NeedCredential)
		var ee *Error
		require.ErrorAs(t, err, &ee)
		assert.Equal(t, "TOKENMGR_TOKEN_URL", ee.Var)
	}
}

func TestParseEnvNeedsNoCredentials(t *testing.T) {
	e, err := Read(mapLookup(map[string]string{"TOKENMGR_STORE": "memory", "TOKENMGR_KEY": "ci"}), NeedNothing)
	require.NoError(t, err)
	assert.Equal(t, "ci", e.Key)
	st, err := e.OpenStore(context.Background())
	require.NoError(t, err)
	require.NotNil(t, st, "a store is opened even with no credential configured")
	_, err = Read(mapLookup(map[string]string{"TOKENMGR_STORE": "memory"}), NeedCredential)
	var ee *Error
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "TOKENMGR_TOKEN_URL", ee.Var)
	_, err = Read(mapLookup(map[string]string{"TOKENMGR_STORE": "floppy"}), NeedNothing)
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "TOKENMGR_STORE", ee.Var)
}

// TestEnvOpenStoreFailsWithTrueNil: a store that cannot be opened is a nil
// interface with the error, never a non-nil interface holding a nil pointer.
func TestEnvOpenStoreFailsWithTrueNil(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.enc")
	require.NoError(t, os.WriteFile(garbage, []byte("not a tokenmgr store"), 0o600))
	for name, vars := range map[string]map[string]string{
		"file, not a store":         {"TOKENMGR_STORE": "file", "TOKENMGR_STORE_PATH": garbage, "TOKENMGR_STORE_PASSPHRASE": envPassphrase},
		"file, no passphrase":       {"TOKENMGR_STORE": "file", "TOKENMGR_STORE_PATH": garbage},
		"file, path is a directory": {"TOKENMGR_STORE": "file", "TOKENMGR_STORE_PATH": dir, "TOKENMGR_STORE_PASSPHRASE": envPassphrase},
	} {
		t.Run(name, func(t *testing.T) {
			e, err := Read(mapLookup(cc(vars)), NeedCredential)
			require.NoError(t, err)
			st, err := e.OpenStore(context.Background())
			require.Error(t, err)
			assert.True(t, st == nil, "got a non-nil %T with the error %v", st, err)
		})
	}
}

// TestEnvJSONHidesSecrets: json.Marshal of an Env, by pointer, by value or
// as a struct field, shows whether each secret is set but never its value
// (issue 10 item 6: it printed all of them).
func TestEnvJSONHidesSecrets(t *testing.T) {
	secrets := map[string]string{
		"TOKENMGR_CLIENT_SECRET":    "JSON-CLIENT-SECRET-9f8e7d",
		"TOKENMGR_REFRESH_TOKEN":    "JSON-REFRESH-TOKEN-9f8e7d",
		"TOKENMGR_STORE_PASSPHRASE": "JSON-PASSPHRASE-9f8e7d",
	}
	vars := map[string]string{"TOKENMGR_TOKEN_URL": "https://auth.example.com/token", "TOKENMGR_CLIENT_ID": "the-client"}
	for k, v := range secrets {
		vars[k] = v
	}
	e, err := Read(func(n string) (string, bool) { v, ok := vars[n]; return v, ok }, NeedCredential)
	require.NoError(t, err)
	type wrapper struct {
		Env  Env
		PEnv *Env
	}
	for name, v := range map[string]any{"pointer": e, "value": *e, "field": wrapper{*e, e}} {
		b, err := json.Marshal(v)
		require.NoError(t, err, name)
		for _, sec := range secrets {
			assert.NotContains(t, string(b), sec, name)
		}
		assert.Contains(t, string(b), `"client_secret_set":true`, name)
		assert.Contains(t, string(b), `"client_id":"the-client"`, name)
	}
}

// A secret is the same whichever way it is given: the variable and its
// _FILE form are trimmed alike (surrounding spaces, tabs and newlines), so
// moving a store passphrase or client secret from one to the other never
// turns it into a wrong key or invalid_client.
func TestSecretFileAndVariableAgree(t *testing.T) {
	raw := " \tpass phrase with inner spaces \t\r\n"
	file := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(file, []byte(raw), 0o600))
	base := map[string]string{"TOKENMGR_TOKEN_URL": "https://auth.example.com/token", "TOKENMGR_CLIENT_ID": "id", "TOKENMGR_STORE": "file", "TOKENMGR_STORE_PATH": filepath.Join(t.TempDir(), "t.enc")}
	read := func(extra map[string]string) *Env {
		vars := maps.Clone(base)
		maps.Copy(vars, extra)
		e, err := Read(mapLookup(vars), NeedCredential)
		require.NoError(t, err)
		return e
	}
	fromVars := read(map[string]string{"TOKENMGR_CLIENT_SECRET": raw, "TOKENMGR_STORE_PASSPHRASE": raw})
	fromFiles := read(map[string]string{"TOKENMGR_CLIENT_SECRET_FILE": file, "TOKENMGR_STORE_PASSPHRASE_FILE": file})
	assert.Equal(t, "pass phrase with inner spaces", fromVars.ClientSecret)
	assert.Equal(t, fromVars.ClientSecret, fromFiles.ClientSecret)
	assert.Equal(t, fromVars.StorePassphrase, fromFiles.StorePassphrase)
}

// TOKENMGR_KEY_CACHE=off turns the session key cache off for the
// encrypted file OpenStore opens (directly or through auto).
func TestKeyCacheEnv(t *testing.T) {
	for v, off := range map[string]bool{"": false, "on": false, " ON ": false, "off": true, "Off": true} {
		e, err := Read(mapLookup(map[string]string{"TOKENMGR_KEY_CACHE": v}), NeedNothing)
		require.NoError(t, err, "%q", v)
		assert.Equal(t, off, e.KeyCacheOff, "%q", v)
		assert.Equal(t, off, e.FileOptions().KeyCacheTTL < 0, "%q", v)
	}
	_, err := Read(mapLookup(map[string]string{"TOKENMGR_KEY_CACHE": "15m"}), NeedNothing)
	var ee *Error
	require.ErrorAs(t, err, &ee)
	assert.Equal(t, "TOKENMGR_KEY_CACHE", ee.Var)
	assert.Contains(t, ee.Problem, `"15m" is not on or off`)
}
