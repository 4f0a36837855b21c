package store

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
)

// NewMemory returns a Store that keeps credentials in process memory only.
// It implements Locker, so several tokenmgr Clients sharing one memory store
// refresh a credential once between them.
func NewMemory() Store {
	return &memory{data: make(map[string][]byte), locks: make(map[string]chan struct{})}
}

type memory struct {
	mu    sync.Mutex
	data  map[string][]byte
	locks map[string]chan struct{} // a 1-buffered channel per key: a lock that honours ctx
}

func (m *memory) Load(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.data[key]
	if !ok {
		return nil, fmt.Errorf("memory store: key %q: %w", key, ErrNotFound)
	}
	return append([]byte(nil), b...), nil
}

func (m *memory) Save(ctx context.Context, key string, data []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.data[key] = append([]byte(nil), data...)
	return nil
}

func (m *memory) Delete(ctx context.Context, key string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.data, key)
	return nil
}

// Keys lists the names of the credentials held, sorted.
func (m *memory) Keys(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.data)), nil
}

func (m *memory) Lock(ctx context.Context, key string) (func(), error) {
	m.mu.Lock()
	ch, ok := m.locks[key]
	if !ok {
		ch = make(chan struct{}, 1)
		m.locks[key] = ch
	}
	m.mu.Unlock()
	select {
	case ch <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-ch }) }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (m *memory) String() string { return "memory" }

// GoString keeps %#v from printing the stored records byte by byte.
func (m *memory) GoString() string { return m.String() }
