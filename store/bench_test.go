package store

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// BenchmarkOpenLoad measures what a program pays at start with the default
// scrypt cost: open the encrypted file (deriving the key) and load a token.
// The budget is 250 ms on a 2-core machine.
func BenchmarkOpenLoad(b *testing.B) {
	path := filepath.Join(b.TempDir(), "creds.enc")
	s, err := NewEncryptedFile(path, []byte(testPass))
	require.NoError(b, err)
	require.NoError(b, s.Save(ctx, "default", fakeJWT(4<<10)))
	for b.Loop() {
		s, err := NewEncryptedFile(path, []byte(testPass))
		require.NoError(b, err)
		_, err = s.Load(ctx, "default")
		require.NoError(b, err)
	}
}

// BenchmarkSave measures one Save into a file of 20 credentials once the key
// is derived: a read, a decrypt, an encrypt and an fsynced atomic rewrite.
func BenchmarkSave(b *testing.B) {
	s := openTestFile(b, filepath.Join(b.TempDir(), "creds.enc"))
	for i := range 20 {
		require.NoError(b, s.Save(ctx, string(rune('a'+i)), fakeJWT(4<<10)))
	}
	v := fakeJWT(4 << 10)
	for b.Loop() {
		require.NoError(b, s.Save(ctx, "a", v))
	}
}
