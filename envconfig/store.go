package envconfig

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"runtime/debug"
	"sort"
	"sync"

	"github.com/tokenmgr/tokenmgr/store"
)

// StoreOpener opens a store from the environment, for a TOKENMGR_STORE
// value registered with [RegisterStore].
type StoreOpener func(ctx context.Context, e *Env) (store.Store, error)

var storeOpeners struct {
	mu sync.RWMutex
	m  map[string]StoreOpener
}

// ErrOpenerPanic is wrapped by the error of a registered store opener that
// panicked: the message has the panic value, redacted of every secret the
// Env holds, and the stack.
var ErrOpenerPanic = errors.New("tokenmgr: panic in store opener")

// externalStores are TOKENMGR_STORE values served by packages outside the
// root module, and the package to import for each.
var externalStores = map[string]string{
	"redis": "github.com/tokenmgr/tokenmgr/store/redisstore",
}

// RegisterStore makes a store selectable as TOKENMGR_STORE=name, the way
// database/sql drivers register: a store in its own module (such as
// store/redisstore, for "redis") calls it from an init function, so a
// program that imports that package can choose it from the environment
// while programs that do not never compile its dependencies. It panics if
// name is registered twice, is a built-in store, or open is nil.
func RegisterStore(name string, open StoreOpener) {
	if open == nil {
		panic("tokenmgr: RegisterStore: nil opener for " + name)
	}
	switch name {
	case "", "auto", "keyring", "file", "memory":
		panic("tokenmgr: RegisterStore: " + name + " is a built-in store")
	}
	storeOpeners.mu.Lock()
	defer storeOpeners.mu.Unlock()
	if storeOpeners.m == nil {
		storeOpeners.m = make(map[string]StoreOpener)
	}
	if _, dup := storeOpeners.m[name]; dup {
		panic("tokenmgr: RegisterStore: " + name + " registered twice")
	}
	storeOpeners.m[name] = open
}

// registeredStore returns the opener for name.
func registeredStore(name string) (StoreOpener, bool) {
	storeOpeners.mu.RLock()
	defer storeOpeners.mu.RUnlock()
	open, ok := storeOpeners.m[name]
	return open, ok
}

// storeNames lists the TOKENMGR_STORE values Read accepts.
func storeNames() []string {
	names := []string{"auto", "keyring", "file", "memory"}
	var more []string
	for n := range externalStores {
		more = append(more, n)
	}
	storeOpeners.mu.RLock()
	for n := range storeOpeners.m {
		if _, ok := externalStores[n]; !ok {
			more = append(more, n)
		}
	}
	storeOpeners.mu.RUnlock()
	sort.Strings(more)
	return append(names, more...)
}

// openRegistered opens a store registered under e.Store, or says which
// package to import for a known one that is not.
func (e *Env) openRegistered(ctx context.Context) (st store.Store, err error) {
	open, ok := registeredStore(e.Store)
	if !ok {
		pkg := externalStores[e.Store]
		return nil, &Error{Var: "TOKENMGR_STORE", Problem: fmt.Sprintf(
			"%q needs its store compiled in: import _ %q in the program (the tokenmgr command includes it)", e.Store, pkg)}
	}
	defer func() {
		// An opener is someone else's code: its panic is an error (the
		// value, which may quote the passphrase, redacted of every secret
		// e holds), and a nil pointer in the interface is no store.
		if r := recover(); r != nil {
			st, err = nil, fmt.Errorf("%w: %q: %s\n\n%s", ErrOpenerPanic, e.Store, e.Redactor().Redact(fmt.Sprint(r)), debug.Stack())
		}
		if err == nil && isNil(st) {
			st, err = nil, fmt.Errorf("tokenmgr: the %q store opener returned no store", e.Store)
		}
		if err != nil {
			if c, ok := st.(io.Closer); ok && !isNil(st) {
				c.Close() // a store with the error: a true nil goes back
			}
			st = nil
		}
	}()
	return open(ctx, e)
}

// isNil reports whether st is nil, or an interface holding a nil pointer,
// map, slice, channel or func.
func isNil(st store.Store) bool {
	if st == nil {
		return true
	}
	switch v := reflect.ValueOf(st); v.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.Interface:
		return v.IsNil()
	}
	return false
}
