package seal

import (
	"crypto/rand"
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

// TestKernelCacheAcrossProcesses: a process that derived a key leaves it
// for the next process, which gets it without scrypt.
func TestKernelCacheAcrossProcesses(t *testing.T) {
	if salt := os.Getenv("TOKENMGR_SEAL_HELPER"); salt != "" {
		p := Params{KDF: KDFScrypt, LogN: 10, R: 8, P: 1}
		copy(p.Salt[:], salt)
		_, err := NewDeriver([]byte("pass"), labels, SessionCache(time.Minute)).Keys(p, nil)
		require.NoError(t, err)
		return
	}
	c := kernelCache(t)
	p := Params{KDF: KDFScrypt, LogN: 10, R: 8, P: 1}
	copy(p.Salt[:], rand.Text())
	t.Cleanup(func() { forget(cacheName(p, labels)) })

	cmd := exec.Command(os.Args[0], "-test.run=^TestKernelCacheAcrossProcesses$")
	cmd.Env = append(os.Environ(), "TOKENMGR_SEAL_HELPER="+string(p.Salt[:]))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)

	want, err := Derive(p, []byte("pass"), labels)
	require.NoError(t, err)
	forgetProcess()
	d, n := counting(NewDeriver([]byte("pass"), labels, c))
	assert.True(t, open(t, d, p, want.Check[:]))
	assert.Equal(t, int32(0), n.Load(), "the keys the helper derived came from the kernel keyring")
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
	name := cacheName(p, labels)
	t.Cleanup(func() { _ = keyring.Delete(service, name) })
	d, n := counting(NewDeriver([]byte("pass"), labels, SessionCache(time.Minute)))
	_, err := d.Keys(p, nil)
	require.NoError(t, err)
	require.Equal(t, int32(1), n.Load())
	_, err = keyring.Get(service, name)
	assert.ErrorIs(t, err, keyring.ErrNotFound, "the derived key was written to the Secret Service")
}
