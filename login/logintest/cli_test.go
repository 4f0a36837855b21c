package logintest_test

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/login/logintest"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
)

var cli struct {
	once sync.Once
	path string
	err  error
	out  []byte
}

// tokenmgrBinary builds cmd/tokenmgr once (its own module, so zitadel
// stays out of its graph) for the tests that run it as a process.
func tokenmgrBinary(t testing.TB) string {
	cli.once.Do(func() {
		dir, err := os.MkdirTemp("", "tokenmgr-login-bin-")
		if err != nil {
			cli.err = err
			return
		}
		cli.path = filepath.Join(dir, "tokenmgr")
		if runtime.GOOS == "windows" {
			cli.path += ".exe"
		}
		build := exec.Command("go", "build", "-o", cli.path, ".")
		build.Dir = filepath.Join("..", "..", "cmd", "tokenmgr")
		cli.out, cli.err = build.CombinedOutput()
	})
	require.NoError(t, cli.err, "building tokenmgr: %s", cli.out)
	return cli.path
}

// cliEnv is the environment of the tokenmgr processes: the provider's
// issuer and public client, an encrypted file store.
func cliEnv(t testing.TB, p *logintest.Provider) ([]string, string) {
	home := t.TempDir()
	path := filepath.Join(home, "tokens.enc")
	return []string{
		"HOME=" + home, "XDG_CONFIG_HOME=" + filepath.Join(home, ".config"), "XDG_CACHE_HOME=" + filepath.Join(home, ".cache"),
		"PATH=" + os.Getenv("PATH"),
		"TOKENMGR_ISSUER=" + p.Issuer, "TOKENMGR_CLIENT_ID=" + p.PublicClientID,
		"TOKENMGR_STORE=file", "TOKENMGR_STORE_PATH=" + path, "TOKENMGR_STORE_PASSPHRASE=" + passphrase,
	}, path
}

const passphrase = "login test passphrase"

func runCLI(t testing.TB, env []string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var o, e bytes.Buffer
	cmd := exec.CommandContext(ctx, tokenmgrBinary(t), args...)
	cmd.Env, cmd.Stdout, cmd.Stderr = env, &o, &e
	err := cmd.Run()
	if err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			t.Fatalf("tokenmgr %v: %v", args, err)
		}
	}
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

// startLogin starts "tokenmgr login" with args and calls person with each
// line it writes to stderr (the URL, the device code) until it exits.
func startLogin(t *testing.T, env []string, person func(line string), args ...string) (stdout, stderr string, code int) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, tokenmgrBinary(t), append([]string{"login"}, args...)...)
	var o bytes.Buffer
	var e strings.Builder
	cmd.Env, cmd.Stdout = env, &o
	pipe, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	sc := bufio.NewScanner(pipe)
	for sc.Scan() {
		e.WriteString(sc.Text() + "\n")
		person(sc.Text())
	}
	cmd.Wait()
	return o.String(), e.String(), cmd.ProcessState.ExitCode()
}

func storedRecord(t *testing.T, path string) *record.Record {
	st, err := store.NewEncryptedFile(path, []byte(passphrase))
	require.NoError(t, err)
	r, err := record.Load(context.Background(), st, "default")
	require.NoError(t, err)
	require.NotNil(t, r)
	return r
}

// "tokenmgr login" in one process, "tokenmgr token" in the next: the
// second serves the first's sign-in from the store, with no request to
// the issuer; status shows who signed in, never a token; "logout
// --revoke" revokes the refresh token at the issuer, after which the
// command says to sign in again.
func TestCLILoginThenToken(t *testing.T) {
	p := start(t, logintest.Options{})
	env, path := cliEnv(t, p)
	authURL := regexp.MustCompile(`^\s+(http://127\.0\.0\.1:\d+/authorize\?\S+)$`)
	var browsed error
	stdout, stderr, code := startLogin(t, env, func(line string) {
		if m := authURL.FindStringSubmatch(line); m != nil {
			browsed = p.Browse(context.Background(), m[1])
		}
	}, "--no-browser")
	require.Equal(t, 0, code, "login: %s", stderr)
	require.NoError(t, browsed)
	assert.Contains(t, stdout, "signed in as "+p.User.Email)
	assert.Contains(t, stderr, "--no-browser", "says why it printed the URL")

	r := storedRecord(t, path)
	requests := p.Requests("/oauth/token")
	stdout, stderr, code = runCLI(t, env, "token")
	require.Equal(t, 0, code, "token: %s", stderr)
	assert.Equal(t, r.AccessToken, strings.TrimSpace(stdout), "the second process serves the stored sign-in")
	assert.Equal(t, requests, p.Requests("/oauth/token"), "without asking the issuer")

	stdout, stderr, code = runCLI(t, env, "token", "--force-refresh")
	require.Equal(t, 0, code, "token --force-refresh: %s", stderr)
	assert.NotEqual(t, r.AccessToken, strings.TrimSpace(stdout))
	assert.EqualValues(t, 1, p.Rotations(), "refreshed with the rotating refresh token")

	stdout, _, code = runCLI(t, env, "status")
	require.Equal(t, 0, code)
	for _, want := range []string{p.Issuer, p.User.Subject, p.User.Email, p.User.Name} {
		assert.Contains(t, stdout, want)
	}
	r = storedRecord(t, path)
	for _, secret := range []string{r.AccessToken, r.RefreshToken, r.IDToken} {
		assert.NotContains(t, stdout, secret)
	}

	stdout, stderr, code = runCLI(t, env, "logout", "--revoke")
	require.Equal(t, 0, code, "logout: %s", stderr)
	assert.Contains(t, stdout, "revoked")
	assert.EqualValues(t, 1, p.Revocations())
	assert.Zero(t, p.RefreshTokens(), "the issuer forgot the refresh token")
	_, stderr, code = runCLI(t, env, "token")
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr, "tokenmgr login")
}

// "tokenmgr login --device": the person enters the printed code.
func TestCLIDeviceLogin(t *testing.T) {
	p := start(t, logintest.Options{})
	env, path := cliEnv(t, p)
	userCode := regexp.MustCompile(`the code\s+(\S+)`)
	var shown string
	var pending strings.Builder
	stdout, stderr, code := startLogin(t, env, func(line string) {
		pending.WriteString(line + " ")
		if m := userCode.FindStringSubmatch(pending.String()); m != nil && shown == "" {
			shown = m[1]
			require.NoError(t, p.ApproveDevice(shown))
		}
	}, "--device")
	require.Equal(t, 0, code, "login --device: %s", stderr)
	assert.NotEmpty(t, shown)
	assert.Contains(t, stdout, "signed in as "+p.User.Email)
	r := storedRecord(t, path)
	stdout, _, code = runCLI(t, env, "token")
	require.Equal(t, 0, code)
	assert.Equal(t, r.AccessToken, strings.TrimSpace(stdout))
}

// Without TOKENMGR_ISSUER, login is a usage error naming the variable.
func TestCLILoginNeedsIssuer(t *testing.T) {
	_, stderr, code := runCLI(t, []string{"HOME=" + t.TempDir(), "TOKENMGR_TOKEN_URL=https://id.example.com/token", "TOKENMGR_CLIENT_ID=c", "TOKENMGR_CLIENT_SECRET=s", "TOKENMGR_STORE=memory"}, "login")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "TOKENMGR_ISSUER")
}
