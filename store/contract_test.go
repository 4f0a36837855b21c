package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testContract checks what every Store here promises: not-found errors,
// replace-on-save, idempotent delete, no aliasing of caller slices, a
// context-aware Locker and a secret-free String.
func testContract(t *testing.T, s Store) {
	t.Helper()
	_, err := s.Load(ctx, "missing")
	require.ErrorIs(t, err, ErrNotFound)

	in := []byte("first value")
	require.NoError(t, s.Save(ctx, "k", in))
	in[0] = 'X' // the store kept its own copy
	got, err := s.Load(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "first value", string(got))
	got[0] = 'Y' // and hands out copies
	got, err = s.Load(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "first value", string(got))

	require.NoError(t, s.Save(ctx, "k", []byte("second")))
	got, err = s.Load(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "second", string(got))

	require.NoError(t, s.Save(ctx, "other", []byte("o")))
	require.NoError(t, s.Delete(ctx, "k"))
	require.NoError(t, s.Delete(ctx, "k"))
	_, err = s.Load(ctx, "k")
	assert.ErrorIs(t, err, ErrNotFound)
	got, err = s.Load(ctx, "other")
	require.NoError(t, err)
	assert.Equal(t, "o", string(got))
	if ls, ok := s.(Lister); ok {
		require.NoError(t, s.Save(ctx, "a", []byte("a")))
		keys, err := ls.Keys(ctx)
		require.NoError(t, err)
		assert.Equal(t, []string{"a", "other"}, keys)
		require.NoError(t, s.Delete(ctx, "a"))
	}

	l, ok := s.(Locker)
	require.True(t, ok, "%T implements Locker", s)
	unlock, err := l.Lock(ctx, "k")
	require.NoError(t, err)
	c, cancel := context.WithTimeout(ctx, 30*time.Millisecond)
	_, err = l.Lock(c, "k")
	cancel()
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	require.NoError(t, s.Save(ctx, "k", []byte("saved under lock")))
	unlock()
	unlock2, err := l.Lock(ctx, "k")
	require.NoError(t, err)
	unlock2()

	str := fmt.Sprint(s)
	assert.NotEmpty(t, str)
	assert.NotContains(t, str, "second")
	assert.NotContains(t, str, testPass)
}

func TestContractMemory(t *testing.T) {
	s := NewMemory()
	require.Implements(t, (*Lister)(nil), s)
	testContract(t, s)
}

func TestContractFile(t *testing.T) {
	s := openTestFile(t, filepath.Join(t.TempDir(), "c.enc"))
	require.Implements(t, (*Lister)(nil), s)
	testContract(t, s)
}

func TestContractFakeKeyring(t *testing.T) {
	s, _ := newFakeKeyringStore(t)
	testContract(t, s)
}

func TestContractRealKeyring(t *testing.T) { testContract(t, realKeyringStore(t)) }
