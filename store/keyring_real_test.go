package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zalando/go-keyring"
)

// keyringTestEnv set to 1 makes the real-keyring tests fail, instead of
// skip, when no OS keyring answers. CI sets it and runs the tests under
// dbus-run-session with gnome-keyring-daemon.
const keyringTestEnv = "TOKENMGR_TEST_KEYRING"

// realKeyringStore returns a keyring store on the real OS keyring under a
// fresh service name, removed after the test.
func realKeyringStore(t *testing.T) *keyringStore {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // lock files
	var r [6]byte
	_, _ = rand.Read(r[:])
	ks := &keyringStore{service: "tokenmgr-test-" + hex.EncodeToString(r[:]), kr: osKeyring{}}
	err := noSessionBus()
	if err == nil {
		err = probeKeyring(context.Background(), ks)
	}
	if err != nil {
		if os.Getenv(keyringTestEnv) == "1" {
			require.FailNow(t, "the OS keyring is unavailable", "%s=1 but: %v", keyringTestEnv, err)
		}
		t.Skipf("no OS keyring (%v); set %s=1 to require one", err, keyringTestEnv)
	}
	t.Cleanup(func() { _ = keyring.DeleteAll(ks.service) })
	return ks
}

func TestRealKeyringRoundTrip(t *testing.T) {
	s := realKeyringStore(t)
	big := fakeJWT(10 << 10)
	small := []byte(`{"access_token":"at","refresh_token":"rt"}`)
	bigger := fakeJWT(16 << 10)

	for _, v := range [][]byte{small, big, small, bigger, big, {}} {
		require.NoError(t, s.Save(ctx, "cred", v))
		got, err := s.Load(ctx, "cred")
		require.NoError(t, err)
		require.True(t, bytes.Equal(v, got), "%d bytes", len(v))
		// Every entry of the service is the manifest and this value's chunks.
		if n, ok := countKeyringItems(t, s.service); ok {
			want := 1
			if enc := (len(v) + 2) / 3 * 4; enc > keyringChunkSize {
				want += (enc + keyringChunkSize - 1) / keyringChunkSize
			}
			assert.Equal(t, want, n, "entries after saving %d bytes", len(v))
		}
	}
	// Another store instance (another process, in effect) reads it.
	got, err := NewKeyring(s.service).Load(ctx, "cred")
	require.NoError(t, err)
	assert.Empty(t, got)

	require.NoError(t, s.Save(ctx, "cred", bigger))
	require.NoError(t, s.Delete(ctx, "cred"))
	_, err = s.Load(ctx, "cred")
	assert.ErrorIs(t, err, ErrNotFound)
	if n, ok := countKeyringItems(t, s.service); ok {
		assert.Zero(t, n, "Delete leaves no chunks behind")
	}
	require.NoError(t, s.Delete(ctx, "cred"))
}

func TestRealKeyringManyKeysAndGoroutines(t *testing.T) {
	s := realKeyringStore(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 3 {
				k := fmt.Sprintf("g%d-%d", g, i)
				assert.NoError(t, s.Save(ctx, k, fakeJWT(3000*(i+1))))
			}
		})
	}
	wg.Wait()
	for g := range 4 {
		for i := range 3 {
			got, err := s.Load(ctx, fmt.Sprintf("g%d-%d", g, i))
			if assert.NoError(t, err) {
				assert.Equal(t, fakeJWT(3000*(i+1)), got)
			}
		}
	}
}

func TestRealKeyringLockAcrossProcesses(t *testing.T) {
	if !crossProcessLocking {
		t.Skip("no cross-process file locking on " + runtime.GOOS)
	}
	s := realKeyringStore(t)
	const procs, each = 3, 5
	var wg sync.WaitGroup
	for range procs {
		wg.Go(func() {
			out, err := helperCmd(t, "keyring-lock-incr", "HELPER_SERVICE="+s.service, "HELPER_N="+strconv.Itoa(each)).CombinedOutput()
			assert.NoError(t, err, "%s", out)
		})
	}
	wg.Wait()
	v, err := s.Load(ctx, "counter")
	require.NoError(t, err)
	assert.Equal(t, strconv.Itoa(procs*each), string(v))
}

func TestRealAutoPicksKeyring(t *testing.T) {
	s := realKeyringStore(t)
	got, err := Auto(ctx, s.service, filepath.Join(t.TempDir(), "unused.enc"), []byte("pw"))
	require.NoError(t, err)
	assert.Equal(t, "keyring("+s.service+")", fmt.Sprint(got))
	_, isLocker := got.(Locker)
	assert.True(t, isLocker)
}

// TestKeyringUnavailableWithoutSessionBus runs in a helper process whose
// D-Bus session address points at no socket: what a headless Linux box
// without a Secret Service looks like. (godbus caches the session
// connection, so this cannot run in the test process.)
func TestKeyringUnavailableWithoutSessionBus(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Secret Service is Linux's keyring")
	}
	dir := t.TempDir()
	out, err := helperCmd(t, "keyring-nobus",
		"DBUS_SESSION_BUS_ADDRESS=unix:path="+filepath.Join(dir, "no-such-socket"),
		"XDG_CACHE_HOME="+dir, "HELPER_PATH="+filepath.Join(dir, "f.enc")).CombinedOutput()
	require.NoError(t, err, "%s", out)
}

// TestKeyringUnavailableWithoutSecretService runs the same checks on a
// private session bus that has no usable Secret Service: either none is
// installed, or gnome-keyring is activated with no login keyring to unlock
// ("failed to unlock correct collection").
func TestKeyringUnavailableWithoutSecretService(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Secret Service is Linux's keyring")
	}
	drs, err := exec.LookPath("dbus-run-session")
	if err != nil {
		t.Skip("dbus-run-session not installed (apt-get install dbus)")
	}
	dir := t.TempDir()
	// Its own runtime directory keeps a gnome-keyring-daemon activated on
	// the private bus from joining one already running for this user.
	runtimeDir := filepath.Join(dir, "run")
	require.NoError(t, os.Mkdir(runtimeDir, 0o700))
	cmd := helperCmd(t, "keyring-nobus", "XDG_DATA_HOME="+filepath.Join(dir, "data"),
		"XDG_RUNTIME_DIR="+runtimeDir, "GNOME_KEYRING_CONTROL=",
		"XDG_CACHE_HOME="+dir, "HELPER_PATH="+filepath.Join(dir, "f.enc"))
	cmd.Args = append([]string{drs, "--"}, cmd.Args...)
	cmd.Path = drs
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
}

func init() {
	keyringHelpers["keyring-lock-incr"] = func(ctx context.Context) error {
		s := NewKeyring(os.Getenv("HELPER_SERVICE"))
		n, _ := strconv.Atoi(os.Getenv("HELPER_N"))
		for range n {
			if err := incrementUnderLock(ctx, s, "counter"); err != nil {
				return err
			}
		}
		return nil
	}
	keyringHelpers["keyring-nobus"] = func(ctx context.Context) error {
		s := NewKeyring("tokenmgr-test-nobus")
		check := func(op string, err error) error {
			if !errors.Is(err, ErrKeyringUnavailable) {
				return fmt.Errorf("%s: want ErrKeyringUnavailable, got %v", op, err)
			}
			for _, want := range []string{"keyring(tokenmgr-test-nobus)", "gnome-keyring-daemon", "dbus-run-session", "TOKENMGR_STORE=file", "TOKENMGR_STORE_PASSPHRASE"} {
				if !strings.Contains(err.Error(), want) {
					return fmt.Errorf("%s: error %q does not mention %q", op, err, want)
				}
			}
			return nil
		}
		_, err := s.Load(ctx, "k")
		if err := check("Load", err); err != nil {
			return err
		}
		if err := check("Save", s.Save(ctx, "k", []byte("v"))); err != nil {
			return err
		}
		if err := check("Delete", s.Delete(ctx, "k")); err != nil {
			return err
		}
		path := os.Getenv("HELPER_PATH")
		fs, err := Auto(ctx, "tokenmgr-test-nobus", path, []byte("pw"))
		if err != nil {
			return fmt.Errorf("Auto with passphrase: %v", err)
		}
		if fs.(fmt.Stringer).String() != "file("+path+")" {
			return fmt.Errorf("Auto with passphrase picked %v", fs)
		}
		_, err = Auto(ctx, "tokenmgr-test-nobus", path, nil)
		if !errors.Is(err, ErrKeyringUnavailable) {
			return fmt.Errorf("Auto without passphrase: want ErrKeyringUnavailable, got %v", err)
		}
		for _, want := range []string{"TOKENMGR_STORE_PASSPHRASE", "TOKENMGR_STORE_PASSPHRASE_FILE", "Secret Service"} {
			if !strings.Contains(err.Error(), want) {
				return fmt.Errorf("Auto error %q does not mention %q", err, want)
			}
		}
		return nil
	}
}

// noSessionBus reports a Linux session with no D-Bus session bus to find.
// Without this check godbus would try dbus-launch, which can leave a bus
// daemon running after the tests.
func noSessionBus() error {
	if runtime.GOOS != "linux" || os.Getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
		return nil
	}
	if _, err := os.Stat(fmt.Sprintf("/run/user/%d/bus", os.Getuid())); err == nil {
		return nil
	}
	return errors.New("no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS unset)")
}

// fakeJWT returns n bytes shaped like a token record with a long id_token.
func fakeJWT(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"id_token":"eyJhbGciOiJSUzI1NiJ9.`)
	for i := 0; b.Len() < n-2; i++ {
		b.WriteByte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[i*7%64])
	}
	b.WriteString(`"}`)
	return b.Bytes()[:n]
}

// TestRealKeyringChunkSizeOfThePlatform: on a Secret Service a record with a
// 6 KiB id_token is one entry (one read per `tokenmgr token`, not six);
// values chunked at the small size (by an older tokenmgr, or a store with
// small entries) read the same.
func TestRealKeyringChunkSizeOfThePlatform(t *testing.T) {
	small := realKeyringStore(t)
	v := fakeJWT(6 << 10)
	require.NoError(t, small.Save(ctx, "cred", v))
	os := newOSKeyringStore(small.service)
	got, err := os.Load(ctx, "cred")
	require.NoError(t, err)
	require.Equal(t, v, got, "a value in 2000-character chunks reads back")

	require.NoError(t, os.Save(ctx, "cred", v))
	got, err = small.Load(ctx, "cred")
	require.NoError(t, err)
	require.Equal(t, v, got)
	if n, ok := countKeyringItems(t, small.service); ok {
		want := 1
		if enc := (len(v) + 2) / 3 * 4; enc > osChunkSize {
			want += (enc + osChunkSize - 1) / osChunkSize
		}
		assert.Equal(t, want, n, "entries for %d bytes with chunks of %d", len(v), osChunkSize)
		if osChunkSize > keyringChunkSize {
			assert.Equal(t, 1, n, "one entry, and the old chunks swept")
		}
	}
	require.NoError(t, os.Delete(ctx, "cred"))
}
