package tokenmgr

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// Cross-process refresh: real processes (this test binary re-run as a
// helper) share one encrypted file store and one counting token endpoint.

const helperEnv = "TOKENMGR_TEST_CLIENT_HELPER"

func TestHelperClientProcess(t *testing.T) {
	if os.Getenv(helperEnv) == "" {
		t.Skip("helper process for TestCrossProcess*; runs only when re-executed")
	}
	if err := helperClient(); err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func helperClient() error {
	st, err := store.NewEncryptedFile(os.Getenv("H_STORE"), []byte("pass-xp"), store.FileOptions{ScryptLogN: 10})
	if err != nil {
		return err
	}
	var src oauth2.TokenSource
	if rt := os.Getenv("H_SEED"); rt != "" {
		src = RefreshToken(&oauth2.Config{ClientID: os.Getenv("H_ID"), ClientSecret: os.Getenv("H_SECRET"),
			Endpoint: oauth2.Endpoint{TokenURL: os.Getenv("H_URL"), AuthStyle: oauth2.AuthStyleInHeader}}, rt)
	} else {
		src = ClientCredentials(&clientcredentials.Config{ClientID: os.Getenv("H_ID"), ClientSecret: os.Getenv("H_SECRET"),
			TokenURL: os.Getenv("H_URL"), AuthStyle: oauth2.AuthStyleInHeader})
	}
	c, err := New(Config{Source: src, Store: st})
	if err != nil {
		return err
	}
	defer c.Close()
	if d, err := time.ParseDuration(os.Getenv("H_SHIFT")); err == nil {
		c.now = func() time.Time { return time.Now().Add(d) }
	}
	fmt.Println("ready")
	io.Copy(io.Discard, os.Stdin) // the start gun: stdin closes
	tok, err := c.Token(context.Background())
	if err != nil {
		return err
	}
	sum := sha256.Sum256([]byte(tok.AccessToken))
	fmt.Println("token", hex.EncodeToString(sum[:8]))
	return nil
}

// runProcesses starts n helpers, waits until all are ready, releases them
// at once and returns the token hash each printed.
func runProcesses(t *testing.T, n int, env ...string) []string {
	t.Helper()
	type proc struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Scanner
	}
	procs := make([]proc, n)
	for i := range procs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperClientProcess$")
		cmd.Env = append(append(os.Environ(), helperEnv+"=1"), env...)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		require.NoError(t, err)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		procs[i] = proc{cmd, stdin, bufio.NewScanner(stdout)}
	}
	for _, p := range procs {
		require.True(t, p.out.Scan(), "helper did not start")
		require.Equal(t, "ready", p.out.Text())
	}
	for _, p := range procs {
		p.stdin.Close()
	}
	var hashes []string
	for _, p := range procs {
		require.True(t, p.out.Scan(), "helper printed no token")
		hashes = append(hashes, strings.TrimPrefix(p.out.Text(), "token "))
		require.NoError(t, p.cmd.Wait())
	}
	return hashes
}

func TestCrossProcessClientCredentialsRefreshOnce(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "creds.enc")
	hashes := runProcesses(t, 8, "H_STORE="+path, "H_URL="+srv.TokenURL(), "H_ID="+srv.ClientID, "H_SECRET="+srv.ClientSecret)
	assert.EqualValues(t, 1, srv.TokenRequests.Load(), "8 processes, one token request")
	for _, h := range hashes {
		assert.Equal(t, hashes[0], h, "every process uses the one token")
	}
}

func TestCrossProcessRotatingRefreshToken(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{Rotate: true})
	defer srv.Close()
	path := filepath.Join(t.TempDir(), "creds.enc")
	env := []string{"H_STORE=" + path, "H_URL=" + srv.TokenURL(), "H_ID=" + srv.ClientID, "H_SECRET=" + srv.ClientSecret, "H_SEED=" + srv.IssueRefreshToken()}

	first := runProcesses(t, 8, env...)
	assert.EqualValues(t, 1, srv.TokenRequests.Load())
	// Two hours later (the helpers' clocks run ahead) the stored token has
	// expired: the seed is dead, the stored rotated refresh token is used,
	// once, by one process.
	second := runProcesses(t, 8, append(env, "H_SHIFT=2h")...)
	assert.EqualValues(t, 2, srv.TokenRequests.Load(), "one refresh for 8 processes")
	assert.Zero(t, srv.InvalidGrants.Load(), "no rotating refresh token used twice")
	for i := range second {
		assert.Equal(t, second[0], second[i])
		assert.NotEqual(t, first[0], second[i])
	}
}
