package store

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// kernelKeys counts the keys in the user keyring whose description starts
// with prefix, or says there is no keyring to look at.
func kernelKeys(t *testing.T, prefix string) (int, bool) {
	t.Helper()
	buf := make([]byte, 1<<16)
	n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, unix.KEY_SPEC_USER_KEYRING, buf, 0)
	if err != nil {
		return 0, false
	}
	require.LessOrEqual(t, n, len(buf))
	count := 0
	for i := 0; i+4 <= n; i += 4 {
		desc, err := unix.KeyctlString(unix.KEYCTL_DESCRIBE, int(int32(binary.NativeEndian.Uint32(buf[i:]))))
		if f := strings.SplitN(desc, ";", 5); err == nil && len(f) == 5 && strings.HasPrefix(f[4], prefix) {
			count++
		}
	}
	return count, true
}

// TestFileKeyCacheBoundedForManyFiles: opening (creating) many encrypted
// files, each with its own salt, with the session key cache on, leaves at
// most 16 keys in the user's kernel keyring (FORMAT.md's slots), whose
// quota (200 keys by default) other programs need too. Earlier entries,
// one per file, were named "tokenmgr:kdf:<hex>".
func TestFileKeyCacheBoundedForManyFiles(t *testing.T) {
	if _, ok := kernelKeys(t, ""); !ok {
		t.Skip("no kernel keyring here (keyctl refused)")
	}
	perFile, _ := kernelKeys(t, "tokenmgr:kdf:")
	dir := t.TempDir()
	const files = 40
	for i := range files {
		s, err := NewEncryptedFile(filepath.Join(dir, fmt.Sprintf("f%d.enc", i)), []byte(testPass), FileOptions{ScryptLogN: 10, KeyCacheTTL: 30 * time.Second})
		require.NoError(t, err)
		require.NoError(t, s.Save(ctx, "k", []byte("v")))
	}
	slots, _ := kernelKeys(t, "tokenmgr:kdf-slot:")
	after, _ := kernelKeys(t, "tokenmgr:kdf:")
	t.Logf("%d files: %d slot keys, %d new per-file keys", files, slots, after-perFile)
	assert.LessOrEqual(t, slots, 16)
	assert.LessOrEqual(t, after, perFile, "a kernel key per file opened")
}
