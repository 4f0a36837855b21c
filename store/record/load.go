package record

import (
	"context"
	"errors"
	"fmt"

	"github.com/tokenmgr/tokenmgr/store"
)

// Load reads and decodes the record stored under key. Nothing stored is
// (nil, nil); an undecodable record is an error naming the key and
// wrapping ErrFormat.
func Load(ctx context.Context, st store.Store, key string) (*Record, error) {
	b, err := st.Load(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r, err := Decode(b)
	if err != nil {
		return nil, fmt.Errorf("stored credential %q: %w", key, err)
	}
	return r, nil
}
