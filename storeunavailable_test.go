package tokenmgr

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// downStore is a shared store whose server does not answer: every call
// fails with err.
type downStore struct{ err error }

func (d downStore) Load(context.Context, string) ([]byte, error) { return nil, d.err }
func (d downStore) Save(context.Context, string, []byte) error   { return d.err }
func (d downStore) Delete(context.Context, string) error         { return d.err }

// A shared store that is down (store.ErrUnavailable) logs the outage
// itself: the Client fetches the token, reports the store error in its
// event and stats, and logs it at debug level only, not once per refresh
// at warning and error level. Any other store error is still a warning.
func TestUnavailableSharedStoreIsNotLoggedPerRefresh(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	for _, tc := range []struct {
		name string
		err  error
		loud bool
	}{
		{"unavailable", fmt.Errorf("redis store: %w: connection refused", store.ErrUnavailable), false},
		{"other", errors.New("disk full"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs strings.Builder
			var ev RefreshEvent
			c := newTestClient(t, Config{Source: ClientCredentials(ccConfig(srv)), Store: downStore{tc.err},
				Logger: newTextLogger(&logs), OnRefresh: func(e RefreshEvent) { ev = e }})
			tok, err := c.Token(context.Background())
			require.NoError(t, err)
			assert.NotEmpty(t, tok.AccessToken)
			assert.ErrorIs(t, ev.StoreErr, tc.err)
			assert.EqualValues(t, 1, c.Stats().StoreErrors)
			out := logs.String()
			if !tc.loud {
				assert.Contains(t, out, "level=DEBUG msg=\"reading the stored token failed")
			}
			loud := strings.Contains(out, "level=WARN") || strings.Contains(out, "level=ERROR")
			assert.Equal(t, tc.loud, loud, "logs:\n%s", out)
		})
	}
}
