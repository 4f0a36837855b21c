package tokenmgr

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
)

// oneConnStore is a Locker store that, like one built on a single
// connection, does everything over one channel: a Save stuck on a dead
// connection keeps its lock's release waiting too.
type oneConnStore struct {
	store.Store
	conn     chan struct{} // 1-buffered: held while an operation is on the connection
	hangSave atomic.Bool
	release  chan struct{} // ends a hung Save
}

func (s *oneConnStore) Save(ctx context.Context, key string, b []byte) error {
	s.conn <- struct{}{}
	defer func() { <-s.conn }()
	if s.hangSave.Load() {
		<-s.release
	}
	return s.Store.Save(ctx, key, b)
}

func (s *oneConnStore) Lock(ctx context.Context, key string) (func(), error) {
	unlock, err := s.Store.(store.Locker).Lock(ctx, key)
	if err != nil {
		return nil, err
	}
	return func() {
		s.conn <- struct{}{} // the release goes over the connection
		<-s.conn
		unlock()
	}, nil
}

// TestAbandonDoesNotWaitForTheStoreUnlock: giving up on a refresh stuck in
// its Store (a Save on a dead connection) returns to the callers at
// RefreshTimeout, and Close returns, even when the Store's lock release
// waits for the stuck Save. abandon called the release itself, in the
// flight, so the flight waited for the stuck Save: every caller hung (the
// singleflight key stayed taken) and Close never returned.
func TestAbandonDoesNotWaitForTheStoreUnlock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &oneConnStore{Store: store.NewMemory(), conn: make(chan struct{}, 1), release: make(chan struct{})}
		defer close(st.release) // the stuck Save ends with the test
		st.hangSave.Store(true)
		src := &hangingSource{release: make(chan struct{})}
		c, err := New(Config{Source: src, Store: st, RefreshTimeout: 10 * time.Second})
		require.NoError(t, err)

		got := make(chan error, 1)
		go func() {
			_, err := c.Token(context.Background())
			got <- err
		}()
		select {
		case err := <-got:
			require.ErrorIs(t, err, context.DeadlineExceeded)
		case <-time.After(time.Hour):
			require.FailNow(t, "Token did not return: the flight waits for the stuck Store")
		}
		closed := make(chan error, 1)
		go func() { closed <- c.Close() }()
		select {
		case err := <-closed:
			require.NoError(t, err)
		case <-time.After(time.Hour):
			require.FailNow(t, "Close did not return")
		}
	})
}

// lateRotatingSource hangs on its first call, then returns a new access
// token and a rotated (single-use) refresh token on each call.
type lateRotatingSource struct {
	release chan struct{}
	calls   atomic.Int64
}

func (s *lateRotatingSource) Token() (*oauth2.Token, error) {
	n := s.calls.Add(1)
	if n == 1 {
		<-s.release
	}
	return &oauth2.Token{AccessToken: fmt.Sprintf("late-%d", n), RefreshToken: fmt.Sprintf("rt-%d", n), Expiry: time.Now().Add(time.Hour)}, nil
}

// TestAbandonedRefreshServedIsSaved: a refresh abandoned at RefreshTimeout
// whose call returns at last, with no newer token in service, puts its
// token in service, and saves it: its refresh token may be a rotated one,
// which must not exist only in memory (the endpoint has used up the
// stored one). It saved nothing, so the next process, or this one after a
// restart, redeemed a used-up refresh token.
func TestAbandonedRefreshServedIsSaved(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &lateRotatingSource{release: make(chan struct{})}
		st := store.NewMemory()
		c := newTestClient(t, Config{Source: src, Store: st, RefreshTimeout: 10 * time.Second})
		_, err := c.Token(context.Background())
		require.ErrorIs(t, err, context.DeadlineExceeded)

		close(src.release) // the abandoned call returns now
		synctest.Wait()
		tok, err := c.Token(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "late-1", tok.AccessToken, "the late token is in service, no newer one being")
		r, err := record.Load(context.Background(), st, DefaultKey)
		require.NoError(t, err)
		require.NotNil(t, r, "the token in service, and its rotated refresh token, are saved")
		assert.Equal(t, "late-1", r.AccessToken)
		assert.Equal(t, "rt-1", r.RefreshToken)
		assert.EqualValues(t, 1, src.calls.Load())
	})
}

// stuckLockStore is a Locker store whose first Lock ignores its context
// and returns only when released.
type stuckLockStore struct {
	store.Store
	calls   atomic.Int64
	release chan struct{}
}

func (s *stuckLockStore) Lock(ctx context.Context, key string) (func(), error) {
	if s.calls.Add(1) == 1 {
		<-s.release
	}
	return s.Store.(store.Locker).Lock(context.Background(), key)
}

// countingSource returns a new token on each call.
type countingSource struct{ calls atomic.Int64 }

func (s *countingSource) Token() (*oauth2.Token, error) {
	n := s.calls.Add(1)
	return &oauth2.Token{AccessToken: fmt.Sprintf("counted-%d", n), Expiry: time.Now().Add(time.Hour)}, nil
}

// TestAbandonedRefreshDoesNotFetchWithoutTheLock: a refresh abandoned
// while it waited for the store's lock (a Lock that ignores its context)
// does not go on to ask the Source when the lock comes at last: abandon
// gave the lock up for it, so the request would run outside it, racing
// another process's refresh under the lock (with a rotating refresh
// token, one of the two gets invalid_grant). Nor is its end a failure
// that holds the next callers off: the next call refreshes.
func TestAbandonedRefreshDoesNotFetchWithoutTheLock(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		st := &stuckLockStore{Store: store.NewMemory(), release: make(chan struct{})}
		src := &countingSource{}
		c := newTestClient(t, Config{Source: src, Store: st, RefreshTimeout: 10 * time.Second})
		_, err := c.Token(context.Background())
		require.ErrorIs(t, err, context.DeadlineExceeded)

		close(st.release) // the abandoned refresh gets the lock now
		synctest.Wait()
		assert.EqualValues(t, 0, src.calls.Load(), "the abandoned refresh asked the Source without the lock")

		tok, err := c.Token(context.Background())
		require.NoError(t, err)
		assert.Equal(t, "counted-1", tok.AccessToken)
		r, err := record.Load(context.Background(), st, DefaultKey)
		require.NoError(t, err)
		require.NotNil(t, r)
		assert.Equal(t, "counted-1", r.AccessToken)
	})
}
