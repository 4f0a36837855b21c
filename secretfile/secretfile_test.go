//go:build unix

package secretfile

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A regular file is read; a directory or a named pipe is refused at once
// (a pipe without a writer is not waited on), a file over the bound is
// refused, a missing one matches fs.ErrNotExist; every error is an
// *fs.PathError.
func TestRead(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "secret")
	require.NoError(t, os.WriteFile(file, []byte("s3cret"), 0o600))
	b, err := Read(file, 64)
	require.NoError(t, err)
	assert.Equal(t, "s3cret", string(b))

	_, err = Read(file, 3)
	assert.ErrorIs(t, err, ErrTooLarge)

	_, err = Read(dir, 64)
	assert.ErrorIs(t, err, ErrNotRegular)
	assert.ErrorContains(t, err, "a directory")
	var pe *fs.PathError
	assert.ErrorAs(t, err, &pe)

	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	_, err = Read(fifo, 64) // would block for a writer without O_NONBLOCK
	assert.ErrorIs(t, err, ErrNotRegular)
	assert.ErrorContains(t, err, "a named pipe")

	_, err = Read(filepath.Join(dir, "missing"), 64)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	assert.ErrorAs(t, err, &pe)
}
