//go:build linux

package store

import (
	"testing"

	"github.com/stretchr/testify/require"
	ss "github.com/zalando/go-keyring/secret_service"
)

// countKeyringItems counts every Secret Service item of service, whatever
// its account name, so a test can see chunks nobody points at any more.
func countKeyringItems(t *testing.T, service string) (int, bool) {
	t.Helper()
	svc, err := ss.NewSecretService()
	require.NoError(t, err, "secret service")
	coll := svc.GetLoginCollection()
	require.NoError(t, svc.Unlock(coll.Path()), "unlock")
	items, err := svc.SearchItems(coll, map[string]string{"service": service})
	require.NoError(t, err, "search")
	return len(items), true
}
