package seal

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zalando/go-keyring"
	"golang.org/x/sys/unix"
)

func kernelCache(t *testing.T) Cache {
	t.Helper()
	c := SessionCache(time.Minute)
	if _, ok := c.(keyctlCache); !ok {
		t.Skip("no kernel keyring here (keyctl refused, e.g. by a seccomp profile)")
	}
	return c
}

func forget(name string) {
	if id, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", name, 0); err == nil {
		_, _ = unix.KeyctlInt(unix.KEYCTL_INVALIDATE, id, 0, 0, 0)
	}
}

func TestKernelCacheEntryExpiresAndIsPrivate(t *testing.T) {
	c := kernelCache(t)
	name := "tokenmgr:test:" + rand.Text()
	t.Cleanup(func() { forget(name) })
	_, ok := c.Get(name)
	require.False(t, ok)
	c.Put(name, []byte("value-1"))
	c.Put(name, []byte("value-2"))
	v, ok := c.Get(name)
	require.True(t, ok)
	assert.Equal(t, "value-2", string(v))

	id, err := unix.KeyctlSearch(unix.KEY_SPEC_USER_KEYRING, "user", name, 0)
	require.NoError(t, err)
	desc, err := unix.KeyctlString(unix.KEYCTL_DESCRIBE, id)
	require.NoError(t, err)
	// type;uid;gid;perm;description: group and other get nothing.
	assert.True(t, strings.HasSuffix(strings.Split(desc, ";")[3], "0000"), "perm %s", desc)
	keys, err := os.ReadFile("/proc/keys")
	require.NoError(t, err)
	var line string
	for l := range strings.Lines(string(keys)) {
		if strings.HasPrefix(l, fmt.Sprintf("%08x ", id)) {
			line = l
		}
	}
	require.NotEmpty(t, line)
	assert.NotEqual(t, "perm", strings.Fields(line)[3], "the entry has a timeout: %s", line)
}

// ownSlots gives this test (and the processes it starts, through
// TOKENMGR_SEAL_SLOTS) session slots of its own, so that other processes of
// this user caching keys at the same time do not take the test's slots.
func ownSlots(t *testing.T) string {
	t.Helper()
	prefix := slotPrefix
	t.Cleanup(func() {
		for i := range sessionSlots {
			forget(fmt.Sprintf("%s%02d", slotPrefix, i))
		}
		slotPrefix = prefix
	})
	slotPrefix = "tokenmgr:test-" + rand.Text()[:10] + ":"
	return slotPrefix
}

// TestKernelCacheAcrossProcesses: a process that derived a key leaves it
// for the next process, which gets it without scrypt.
func TestKernelCacheAcrossProcesses(t *testing.T) {
	if salt := os.Getenv("TOKENMGR_SEAL_HELPER"); salt != "" {
		slotPrefix = os.Getenv("TOKENMGR_SEAL_SLOTS")
		p := Params{KDF: KDFScrypt, LogN: 10, R: 8, P: 1}
		copy(p.Salt[:], salt)
		_, err := NewDeriver([]byte("pass"), labels, SessionCache(time.Minute)).Keys(p, nil)
		require.NoError(t, err)
		return
	}
	c := kernelCache(t)
	slots := ownSlots(t)
	p := Params{KDF: KDFScrypt, LogN: 10, R: 8, P: 1}
	copy(p.Salt[:], rand.Text())

	cmd := exec.Command(os.Args[0], "-test.run=^TestKernelCacheAcrossProcesses$")
	cmd.Env = append(os.Environ(), "TOKENMGR_SEAL_HELPER="+string(p.Salt[:]), "TOKENMGR_SEAL_SLOTS="+slots)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)

	want, err := Derive(p, []byte("pass"), labels)
	require.NoError(t, err)
	forgetProcess()
	d, n := counting(NewDeriver([]byte("pass"), labels, c))
	assert.True(t, open(t, d, p, want.Check[:]))
	assert.Equal(t, int32(0), n.Load(), "the keys the helper derived came from the kernel keyring")
}

// userKeys lists the descriptions of the keys in the user keyring that
// start with prefix.
func userKeys(t *testing.T, prefix string) []string {
	t.Helper()
	buf := make([]byte, 1<<16)
	n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, unix.KEY_SPEC_USER_KEYRING, buf, 0)
	require.NoError(t, err)
	require.LessOrEqual(t, n, len(buf))
	var out []string
	for i := 0; i+4 <= n; i += 4 {
		id := int(int32(binary.NativeEndian.Uint32(buf[i:])))
		desc, err := unix.KeyctlString(unix.KEYCTL_DESCRIBE, id)
		if err != nil {
			continue // expired or removed meanwhile
		}
		if f := strings.SplitN(desc, ";", 5); len(f) == 5 && strings.HasPrefix(f[4], prefix) {
			out = append(out, f[4])
		}
	}
	return out
}

// TestKernelCacheBoundedForManyFiles: opening many files, each with its own
// salt, leaves at most sessionSlots keys in the user keyring, whose quota
// (200 keys for a user by default) other programs need too; and the key of
// the file opened last is there for the next process.
func TestKernelCacheBoundedForManyFiles(t *testing.T) {
	c := kernelCache(t)
	slots := ownSlots(t)
	const files = 40
	var last Params
	var lastCheck []byte
	for range files {
		last = cheapParams(t)
		k, err := NewDeriver([]byte("pass"), labels, c).Keys(last, nil) // a file created
		require.NoError(t, err)
		lastCheck = k.Check[:]
	}
	keys := userKeys(t, slots)
	t.Logf("%d files: %d keys in the user keyring", files, len(keys))
	assert.LessOrEqual(t, len(keys), sessionSlots)
	assert.NotEmpty(t, keys)

	forgetProcess()
	d, n := counting(NewDeriver([]byte("pass"), labels, c))
	assert.True(t, open(t, d, last, lastCheck))
	assert.Equal(t, int32(0), n.Load(), "the last file's key is cached")
}

// TestNoKeyCacheInOSKeyring: where keyctl is refused, a derived key is not
// kept in the Secret Service, which would keep it until read again: with no
// expiry of its own, an entry never looked up again would stay forever.
func TestNoKeyCacheInOSKeyring(t *testing.T) {
	const service = "tokenmgr-key-cache" // where earlier versions kept keys
	if _, err := keyring.Get(service, "tokenmgr-probe"); err != nil && !errors.Is(err, keyring.ErrNotFound) {
		if os.Getenv("TOKENMGR_TEST_KEYRING") == "1" {
			require.FailNow(t, "the Secret Service is unavailable", "TOKENMGR_TEST_KEYRING=1 but: %v", err)
		}
		t.Skipf("no Secret Service (%v); set TOKENMGR_TEST_KEYRING=1 to require one", err)
	}
	usable := keyctlUsable
	keyctlUsable = func() bool { return false } // a container refusing keyctl
	t.Cleanup(func() { keyctlUsable = usable })

	forgetProcess()
	p := cheapParams(t)
	name := entryName(cacheID(p, labels))
	t.Cleanup(func() { _ = keyring.Delete(service, name) })
	d, n := counting(NewDeriver([]byte("pass"), labels, SessionCache(time.Minute)))
	_, err := d.Keys(p, nil)
	require.NoError(t, err)
	require.Equal(t, int32(1), n.Load())
	_, err = keyring.Get(service, name)
	assert.ErrorIs(t, err, keyring.ErrNotFound, "the derived key was written to the Secret Service")
}
