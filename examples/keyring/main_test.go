package main

import (
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestRun needs a reachable OS keyring, so it runs only when
// TOKENMGR_TEST_KEYRING=1, and must pass then. On Linux:
//
//	dbus-run-session -- sh -c 'echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null; TOKENMGR_TEST_KEYRING=1 go test ./examples/keyring'
func TestRun(t *testing.T) {
	if os.Getenv("TOKENMGR_TEST_KEYRING") != "1" {
		t.Skip("set TOKENMGR_TEST_KEYRING=1 to run against the OS keyring")
	}
	require.NoError(t, run())
}
