//go:build linux

package store

import (
	"testing"

	ss "github.com/zalando/go-keyring/secret_service"
)

// countKeyringItems counts every Secret Service item of service, whatever
// its account name, so a test can see chunks nobody points at any more.
func countKeyringItems(t *testing.T, service string) (int, bool) {
	t.Helper()
	svc, err := ss.NewSecretService()
	if err != nil {
		t.Fatalf("secret service: %v", err)
	}
	coll := svc.GetLoginCollection()
	if err := svc.Unlock(coll.Path()); err != nil {
		t.Fatalf("unlock: %v", err)
	}
	items, err := svc.SearchItems(coll, map[string]string{"service": service})
	if err != nil {
		t.Fatalf("search: %v", err)
	}
	return len(items), true
}
