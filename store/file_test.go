package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var ctx = context.Background()

func TestFileRoundTripManyKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.enc")
	s := openTestFile(t, path)
	want := map[string][]byte{}
	for i := range 50 {
		k := fmt.Sprintf("cred-%d", i)
		v := bytes.Repeat([]byte{byte(i)}, i*97) // includes an empty value
		want[k] = v
		require.NoError(t, s.Save(ctx, k, v))
	}
	for k, v := range want {
		got, err := s.Load(ctx, k)
		require.NoError(t, err)
		assert.Equal(t, len(v), len(got))
		assert.True(t, bytes.Equal(v, got), k)
	}
	require.NoError(t, s.Save(ctx, "cred-1", []byte("replaced")))
	got, err := s.Load(ctx, "cred-1")
	require.NoError(t, err)
	assert.Equal(t, "replaced", string(got))

	require.NoError(t, s.Delete(ctx, "cred-2"))
	_, err = s.Load(ctx, "cred-2")
	assert.ErrorIs(t, err, ErrNotFound)
	require.NoError(t, s.Delete(ctx, "cred-2"), "deleting a missing key is not an error")
}

func TestFilePersistsAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.enc")
	s := openTestFile(t, path)
	require.NoError(t, s.Save(ctx, "a", []byte("alpha")))
	require.NoError(t, s.Save(ctx, "b", []byte("beta")))

	s2 := openTestFile(t, path)
	got, err := s2.Load(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, "alpha", string(got))
	got, err = s2.Load(ctx, "b")
	require.NoError(t, err)
	assert.Equal(t, "beta", string(got))

	// A second store instance sees the first one's later writes.
	require.NoError(t, s.Save(ctx, "c", []byte("gamma")))
	got, err = s2.Load(ctx, "c")
	require.NoError(t, err)
	assert.Equal(t, "gamma", string(got))
}

func TestFileMissingIsEmpty(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "not", "yet")
	path := filepath.Join(dir, "creds.enc")
	s := openTestFile(t, path)
	_, err := s.Load(ctx, "x")
	assert.ErrorIs(t, err, ErrNotFound)
	require.NoError(t, s.Delete(ctx, "x"))
	_, err = os.Stat(path)
	assert.ErrorIs(t, err, os.ErrNotExist, "Delete must not create the file")
	require.NoError(t, s.Save(ctx, "x", []byte("1")))
	_, err = os.Stat(path)
	assert.NoError(t, err)
}

func TestFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("unix permissions")
	}
	base := t.TempDir()
	require.NoError(t, os.Chmod(base, 0o755))
	path := filepath.Join(base, "new", "deeper", "creds.enc")
	s := openTestFile(t, path)
	require.NoError(t, s.Save(ctx, "k", []byte("v")))

	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	for _, d := range []string{filepath.Join(base, "new"), filepath.Join(base, "new", "deeper")} {
		fi, err := os.Stat(d)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), d)
	}
	fi, err = os.Stat(base)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm(), "an existing directory is not chmodded")

	require.NoError(t, s.Save(ctx, "k2", []byte("v")))
	fi, err = os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "rewrites stay 0600")
}

func TestFileWrongPassphrase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.enc")
	s := openTestFile(t, path)
	require.NoError(t, s.Save(ctx, "k", []byte("secret-token-value")))
	before, err := os.ReadFile(path)
	require.NoError(t, err)

	_, err = NewEncryptedFile(path, []byte("not the passphrase"), testOpts)
	require.Error(t, err)
	assert.ErrorIs(t, err, ErrWrongKey)
	assert.ErrorIs(t, err, ErrDecrypt)
	assert.Contains(t, err.Error(), path)
	assert.NotContains(t, err.Error(), "not the passphrase")
	assert.NotContains(t, err.Error(), "secret-token-value")

	after, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, before, after, "file must be left exactly as it was")

	// A store opened earlier must not overwrite a file it can no longer
	// decrypt (here: replaced by one under another passphrase).
	other := filepath.Join(t.TempDir(), "other.enc")
	o, err := NewEncryptedFile(other, []byte("another passphrase"), testOpts)
	require.NoError(t, err)
	require.NoError(t, o.Save(ctx, "theirs", []byte("x")))
	foreign, err := os.ReadFile(other)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(path, foreign, 0o600))
	err = s.Save(ctx, "k", []byte("new"))
	assert.ErrorIs(t, err, ErrWrongKey)
	err = s.Delete(ctx, "theirs")
	assert.ErrorIs(t, err, ErrWrongKey)
	_, err = s.Load(ctx, "k")
	assert.ErrorIs(t, err, ErrWrongKey)
	after, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, foreign, after, "Save on an undecryptable file must not overwrite it")
}

func TestFileEveryByteFlipFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "creds.enc")
	s := openTestFile(t, path)
	require.NoError(t, s.Save(ctx, "k", []byte("v")))
	good, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Less(t, len(good), 200)

	for i := range good {
		for _, mask := range []byte{0x01, 0xff} {
			bad := bytes.Clone(good)
			bad[i] ^= mask
			require.NoError(t, os.WriteFile(path, bad, 0o600))
			_, err := NewEncryptedFile(path, []byte(testPass), testOpts)
			require.Error(t, err, "byte %d ^ %#x accepted", i, mask)
			assert.True(t, errIsDecodeFailure(err), "byte %d: %v", i, err)
			assert.Contains(t, err.Error(), path)
			// A store opened before the damage fails too and leaves it be.
			_, err = s.Load(ctx, "k")
			require.Error(t, err, "byte %d ^ %#x accepted by Load", i, mask)
			require.Error(t, s.Save(ctx, "k", []byte("w")))
			after, _ := os.ReadFile(path)
			require.Equal(t, bad, after)
		}
	}
	// Appended bytes are caught by the tag too.
	require.NoError(t, os.WriteFile(path, append(bytes.Clone(good), 0), 0o600))
	_, err = s.Load(ctx, "k")
	assert.ErrorIs(t, err, ErrTampered)
}

func TestFileBadFilesNameTheProblem(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "creds.enc")
	s := openTestFile(t, path)
	require.NoError(t, s.Save(ctx, "k", []byte("v")))
	good, err := os.ReadFile(path)
	require.NoError(t, err)

	newer := bytes.Clone(good)
	newer[offVersion] = fileVersion + 1
	costly := bytes.Clone(good)
	costly[offKDF+1] = 30 // N = 2^30: must be refused, not run
	hugeR := bytes.Clone(good)
	hugeR[offKDF+1], hugeR[offKDF+2] = 20, 8 // 1 GiB of memory

	cases := []struct {
		name string
		data []byte
		msg  string
	}{
		{"zero length", []byte{}, "empty"},
		{"truncated header", good[:5], "truncated"},
		{"truncated body", good[:headerSize+3], "truncated"},
		{"truncated tag", good[:len(good)-1], "authentication"},
		{"newer version", newer, "newer"},
		{"not a store", []byte(`{"access_token":"x"}`), "not a tokenmgr"},
		{"scrypt N too big", costly, "scrypt"},
		{"scrypt memory too big", hugeR, "MiB"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			require.NoError(t, os.WriteFile(path, c.data, 0o600))
			start := time.Now()
			_, err := NewEncryptedFile(path, []byte(testPass), testOpts)
			require.Error(t, err)
			assert.Less(t, time.Since(start), 2*time.Second)
			assert.True(t, errIsDecodeFailure(err), "%v", err)
			assert.Contains(t, err.Error(), path)
			assert.Contains(t, err.Error(), c.msg)
			err = s.Save(ctx, "k", []byte("w"))
			require.Error(t, err)
			after, _ := os.ReadFile(path)
			assert.Equal(t, c.data, after, "file must be left as it was")
		})
	}
}

func TestFileSaltStableNonceFresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.enc")
	s := openTestFile(t, path)
	require.NoError(t, s.Save(ctx, "k", []byte("v")))
	a, err := os.ReadFile(path)
	require.NoError(t, err)
	require.NoError(t, s.Save(ctx, "k", []byte("v")))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, a[:offNonce], b[:offNonce], "header incl. salt kept across writes")
	assert.NotEqual(t, a[offNonce:headerSize], b[offNonce:headerSize], "fresh nonce per write")
	assert.Equal(t, byte(10), a[offKDF+1])
}

func TestFileWithKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.enc")
	key := bytes.Repeat([]byte{7}, 32)
	s, err := NewEncryptedFile(path, nil, WithKey(key))
	require.NoError(t, err)
	require.NoError(t, s.Save(ctx, "k", []byte("v")))
	s2, err := NewEncryptedFile(path, nil, WithKey(key))
	require.NoError(t, err)
	got, err := s2.Load(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "v", string(got))

	_, err = NewEncryptedFile(path, nil, WithKey(bytes.Repeat([]byte{8}, 32)))
	assert.ErrorIs(t, err, ErrWrongKey)
	_, err = NewEncryptedFile(path, []byte(testPass), testOpts)
	assert.ErrorIs(t, err, ErrWrongKey)
	_, err = NewEncryptedFile(path, nil, WithKey(key[:16]))
	assert.Error(t, err)
}

func TestFileArgumentErrors(t *testing.T) {
	dir := t.TempDir()
	_, err := NewEncryptedFile(filepath.Join(dir, "x"), nil)
	assert.Error(t, err)
	_, err = NewEncryptedFile("", []byte("p"))
	assert.Error(t, err)
	_, err = NewEncryptedFile(filepath.Join(dir, "x"), []byte("p"), FileOptions{ScryptLogN: 30})
	assert.Error(t, err)
	s := openTestFile(t, filepath.Join(dir, "x"))
	err = s.Save(ctx, "big", make([]byte, MaxValueSize+1))
	assert.ErrorIs(t, err, ErrTooLarge)
	assert.ErrorContains(t, s.Save(ctx, "bad\xff", []byte("v")), "UTF-8")
}

func TestFileStringHasNoSecrets(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.enc")
	s := openTestFile(t, path)
	require.NoError(t, s.Save(ctx, "k", []byte("token-bytes")))
	str := fmt.Sprint(s)
	assert.Equal(t, "file("+path+")", str)
	assert.NotContains(t, fmt.Sprintf("%v %+v", s, s), testPass)
	_, err := s.Load(ctx, "missing")
	assert.NotContains(t, err.Error(), testPass)
}

func TestDefaultFilePath(t *testing.T) {
	t.Setenv("XDG_CONFIG_HOME", "/cfg")
	t.Setenv("HOME", "/home/u")
	p, err := DefaultFilePath()
	require.NoError(t, err)
	if runtime.GOOS == "linux" {
		assert.Equal(t, "/cfg/tokenmgr/credentials.enc", p)
	}
}

func TestFileConcurrentGoroutines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.enc")
	a, b := openTestFile(t, path), openTestFile(t, path)
	var wg sync.WaitGroup
	for g, s := range []Store{a, b, a, b} {
		wg.Go(func() {
			for i := range 10 {
				assert.NoError(t, s.Save(ctx, fmt.Sprintf("g%d-%d", g, i), []byte("x")))
			}
		})
	}
	wg.Wait()
	for g := range 4 {
		for i := range 10 {
			_, err := a.Load(ctx, fmt.Sprintf("g%d-%d", g, i))
			assert.NoError(t, err)
		}
	}
}

func TestFileConcurrentProcessesLoseNothing(t *testing.T) {
	if !crossProcessLocking {
		t.Skip("no cross-process file locking on " + runtime.GOOS)
	}
	path := filepath.Join(t.TempDir(), "creds.enc")
	const procs, perProc = 4, 15
	var wg sync.WaitGroup
	for p := range procs {
		wg.Go(func() {
			cmd := helperCmd(t, "save-keys", "HELPER_PATH="+path, "HELPER_N="+strconv.Itoa(perProc), fmt.Sprintf("HELPER_PREFIX=p%d", p))
			out, err := cmd.CombinedOutput()
			assert.NoError(t, err, "%s", out)
		})
	}
	wg.Wait()
	s := openTestFile(t, path)
	for p := range procs {
		for i := range perProc {
			k := fmt.Sprintf("p%d-%d", p, i)
			v, err := s.Load(ctx, k)
			if assert.NoError(t, err, k) {
				assert.Equal(t, "value of "+k, string(v))
			}
		}
	}
}

func TestFileCrashDuringWrite(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("SIGKILL")
	}
	path := filepath.Join(t.TempDir(), "creds.enc")
	iterations := 30
	if testing.Short() {
		iterations = 5
	}
	midWrite := 0
	for range iterations {
		cmd := startHelperReady(t, "save-loop", "HELPER_PATH="+path)
		time.Sleep(time.Duration(rand.IntN(15000)) * time.Microsecond)
		require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
		err := cmd.Wait()
		require.Error(t, err, "writer must have been killed, not exited")
		if tmps, _ := filepath.Glob(path + ".tmp-*"); len(tmps) > 0 {
			midWrite++ // killed between creating and renaming a temp file
		}

		s := openTestFile(t, path) // must decode
		for i := range 20 {
			k := fmt.Sprintf("crash-%d", i)
			v, err := s.Load(ctx, k)
			if errors.Is(err, ErrNotFound) {
				continue
			}
			require.NoError(t, err, k)
			require.NoError(t, checkCrashValue(k, v))
		}
	}
	t.Logf("%d of %d writers were killed mid-write (temp file left behind)", midWrite, iterations)
	// The next write sweeps temporary files a killed writer left behind.
	s := openTestFile(t, path)
	require.NoError(t, s.Save(ctx, "after", []byte("crash")))
	ents, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	for _, e := range ents {
		assert.False(t, strings.Contains(e.Name(), ".tmp-"), "stale temp file %s", e.Name())
	}
}

func TestFileLockAcrossProcesses(t *testing.T) {
	if !crossProcessLocking {
		t.Skip("no cross-process file locking on " + runtime.GOOS)
	}
	path := filepath.Join(t.TempDir(), "creds.enc")
	const procs, each = 4, 10
	var wg sync.WaitGroup
	for range procs {
		wg.Go(func() {
			out, err := helperCmd(t, "lock-incr", "HELPER_PATH="+path, "HELPER_N="+strconv.Itoa(each)).CombinedOutput()
			assert.NoError(t, err, "%s", out)
		})
	}
	// This process takes part too, through two stores on the same file.
	a, b := openTestFile(t, path), openTestFile(t, path)
	for _, s := range []Store{a, b} {
		wg.Go(func() {
			for range each {
				assert.NoError(t, incrementUnderLock(ctx, s, "counter"))
			}
		})
	}
	wg.Wait()
	v, err := a.Load(ctx, "counter")
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa((procs+2)*each), string(v))
}

func TestFileLockRespectsContext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "creds.enc")
	s := openTestFile(t, path)
	l := s.(Locker)

	t.Run("held in this process", func(t *testing.T) {
		unlock, err := l.Lock(ctx, "held")
		require.NoError(t, err)
		defer unlock()
		before := runtime.NumGoroutine()
		c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, err = openTestFile(t, path).(Locker).Lock(c, "held")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assertNoGoroutineLeak(t, before)
		// Another key is not blocked.
		u2, err := l.Lock(ctx, "other")
		require.NoError(t, err)
		u2()
	})

	t.Run("held by another process", func(t *testing.T) {
		if !crossProcessLocking {
			t.Skip("no cross-process file locking on " + runtime.GOOS)
		}
		cmd := helperCmd(t, "hold-lock", "HELPER_PATH="+path)
		stdin, err := cmd.StdinPipe()
		require.NoError(t, err)
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		buf := make([]byte, 6)
		_, err = io.ReadFull(stdout, buf)
		require.NoError(t, err)
		require.Equal(t, "ready\n", string(buf))

		before := runtime.NumGoroutine()
		c, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err = l.Lock(c, "held")
		assert.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Less(t, time.Since(start), time.Second)
		assertNoGoroutineLeak(t, before)

		// Once the other process lets go, the lock is ours.
		require.NoError(t, stdin.Close())
		require.NoError(t, cmd.Wait())
		c2, cancel2 := context.WithTimeout(ctx, 5*time.Second)
		defer cancel2()
		unlock, err := l.Lock(c2, "held")
		require.NoError(t, err)
		unlock()
		unlock() // idempotent
	})

	t.Run("cancelled before", func(t *testing.T) {
		c, cancel := context.WithCancel(ctx)
		cancel()
		_, err := l.Lock(c, "k")
		assert.ErrorIs(t, err, context.Canceled)
	})
}

// assertNoGoroutineLeak checks the goroutine count drops back to before
// (runtime and os/exec goroutines may take a moment to finish).
func assertNoGoroutineLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	assert.LessOrEqual(t, runtime.NumGoroutine(), before, "goroutine left behind")
}
