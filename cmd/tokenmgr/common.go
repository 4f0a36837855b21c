package main

import (
	"context"

	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/store"
)

func storeName(st store.Store) string { return display.StoreName(st) }

// lockStore takes the credential's lock when st has one.
func lockStore(ctx context.Context, st store.Store, key string) (func(), error) {
	if l, ok := st.(store.Locker); ok {
		return l.Lock(ctx, key)
	}
	return func() {}, nil
}
