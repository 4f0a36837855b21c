package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// testOpts keeps scrypt cheap in tests (1 MiB, about a millisecond) and
// the tests' keys out of the session cache (store/seal tests it).
var testOpts = FileOptions{ScryptLogN: 10, KeyCacheTTL: -1}

const testPass = "correct horse battery staple"

func openTestFile(t testing.TB, path string) Store {
	t.Helper()
	s, err := NewEncryptedFile(path, []byte(testPass), testOpts)
	require.NoError(t, err)
	return s
}

// helperEnv is the variable that turns a re-executed test binary into one of
// the helper processes below (the standard os/exec helper-process pattern).
const helperEnv = "TOKENMGR_STORE_TEST_HELPER"

// helperCmd returns a command re-running this test binary as helper mode.
func helperCmd(t *testing.T, mode string, env ...string) *exec.Cmd {
	t.Helper()
	// A helper that hangs is killed rather than hanging the test run.
	hctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	cmd := exec.CommandContext(hctx, os.Args[0], "-test.run=^TestHelperProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// startHelperReady starts a helper and waits until it prints "ready".
func startHelperReady(t *testing.T, mode string, env ...string) *exec.Cmd {
	t.Helper()
	cmd := helperCmd(t, mode, env...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		require.FailNow(t, "helper did not get ready", "%s: %q %v", mode, line, err)
	}
	go io.Copy(io.Discard, stdout) //nolint:errcheck // drained until the helper exits
	return cmd
}

// crashValue is what the crash-test writer saves: a value whose shape can be
// checked after the writer is killed.
func crashValue(key string, n int) []byte {
	body := strings.Repeat(key+";", n/(len(key)+1)+1)
	return []byte(fmt.Sprintf("%s|%d|%s", key, n, body[:n]))
}

func checkCrashValue(key string, v []byte) error {
	parts := strings.SplitN(string(v), "|", 3)
	if len(parts) != 3 || parts[0] != key {
		return fmt.Errorf("bad value for %s", key)
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil || string(crashValue(key, n)) != string(v) {
		return fmt.Errorf("bad value for %s", key)
	}
	return nil
}

// TestHelperProcess is not a test: it is the body of the helper processes.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		return
	}
	err := helperMain(mode)
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(3)
	}
	os.Exit(0)
}

func helperMain(mode string) error {
	ctx := context.Background()
	path := os.Getenv("HELPER_PATH")
	n, _ := strconv.Atoi(os.Getenv("HELPER_N"))
	openFile := func() (Store, error) {
		return NewEncryptedFile(path, []byte(testPass), testOpts)
	}
	switch mode {
	case "save-keys":
		s, err := openFile()
		if err != nil {
			return err
		}
		prefix := os.Getenv("HELPER_PREFIX")
		for i := range n {
			k := fmt.Sprintf("%s-%d", prefix, i)
			if err := s.Save(ctx, k, []byte("value of "+k)); err != nil {
				return err
			}
		}
		return nil
	case "save-loop":
		s, err := openFile()
		if err != nil {
			return err
		}
		for i := 0; ; i++ {
			k := fmt.Sprintf("crash-%d", i%20)
			if err := s.Save(ctx, k, crashValue(k, 100+(i*397)%5000)); err != nil {
				return err
			}
			if i == 0 {
				fmt.Println("ready")
			}
		}
	case "lock-incr":
		s, err := openFile()
		if err != nil {
			return err
		}
		for range n {
			if err := incrementUnderLock(ctx, s, "counter"); err != nil {
				return err
			}
		}
		return nil
	case "hold-lock":
		s, err := openFile()
		if err != nil {
			return err
		}
		unlock, err := s.(Locker).Lock(ctx, "held")
		if err != nil {
			return err
		}
		defer unlock()
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin) // hold until the parent closes stdin
		return nil
	default:
		if f, ok := keyringHelpers[mode]; ok {
			return f(ctx)
		}
		return fmt.Errorf("unknown helper mode %q", mode)
	}
}

// keyringHelpers are helper modes registered by the keyring tests.
var keyringHelpers = map[string]func(context.Context) error{}

// incrementUnderLock is what a tokenmgr Client does on refresh: lock, re-read,
// write, unlock.
func incrementUnderLock(ctx context.Context, s Store, key string) error {
	unlock, err := s.(Locker).Lock(ctx, key)
	if err != nil {
		return err
	}
	defer unlock()
	n := 0
	b, err := s.Load(ctx, key)
	switch {
	case errors.Is(err, ErrNotFound):
	case err != nil:
		return err
	default:
		if n, err = strconv.Atoi(string(b)); err != nil {
			return err
		}
	}
	time.Sleep(time.Millisecond) // widen the window a missing lock would open
	return s.Save(ctx, key, []byte(strconv.Itoa(n+1)))
}

// errIsDecodeFailure reports whether err came from a file's contents (bad
// format, wrong key, tampering) rather than from the system.
func errIsDecodeFailure(err error) bool {
	return errors.Is(err, ErrFormat) || errors.Is(err, ErrDecrypt)
}
