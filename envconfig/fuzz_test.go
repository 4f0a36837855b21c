package envconfig

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

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
			return Read(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, NeedCredential)
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
			var ee *Error
			require.ErrorAs(t, err, &ee)
			require.Contains(t, Vars, ee.Var, "the error names a known variable")
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
