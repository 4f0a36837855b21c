//go:build unix

package main

import (
	"context"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A web identity token file that is a directory or a named pipe is
// refused at once with a hint about AWS_WEB_IDENTITY_TOKEN_FILE, by the
// rule of the _FILE variables (package secretfile). Before, a directory
// got the TOKENMGR_STORE_PATH hint and a named pipe waited until
// --timeout ("waiting for a token: context deadline exceeded").
func TestAWSCredentialProcessTokenFileNotRegular(t *testing.T) {
	_, env := awsVars(t)
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	for _, tc := range []struct{ path, kind string }{{dir, "a directory"}, {fifo, "a named pipe"}} {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		start := time.Now()
		r := exeCtx(ctx, t, nil, env.with("AWS_WEB_IDENTITY_TOKEN_FILE", tc.path), "aws", "credential-process", "--timeout", "15s")
		cancel()
		assert.Less(t, time.Since(start), 10*time.Second, "%s: not refused at once", tc.kind)
		assert.Equal(t, 1, r.code, "%v", r)
		assert.Contains(t, r.stderr, "not a regular file ("+tc.kind+")")
		assert.Contains(t, r.stderr, "hint: AWS_WEB_IDENTITY_TOKEN_FILE")
		assert.NotContains(t, r.stderr, "TOKENMGR_STORE_PATH")
	}
}
