package tokenmgr

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tokenmgr/tokenmgr/damp"
	"github.com/tokenmgr/tokenmgr/store"
)

// engine keeps one credential of type T in service: its windows, the
// refreshes (one at a time, through a singleflight, with abandonment, a
// failure cooldown and a background loop), the store's lock and re-read,
// and compare-and-swap invalidation. What it knows of T is its kind's.
// The Client assembles an engine of OAuth tokens with a transport.
type engine[T any] struct {
	kind    kind[T]
	st      store.Store
	key     string
	log     *slog.Logger
	onEvent func(RefreshEvent)
	onRetry func(RetryEvent)
	obs     *Observer // nil when Config.Observer is

	fingerprint string // the Source's configuration, stamped on stored records
	description string // and its description, for people

	refreshBefore, expiryDelta   time.Duration
	refreshTimeout, tokenTimeout time.Duration
	maxRefused                   int // Config.RefusedAttempts

	cur atomic.Pointer[entry[T]] // the token in service; nil when none
	sf  singleflight.Group
	bg  atomic.Bool // a background refresh loop is running

	stuck  atomic.Pointer[work[T]] // the latest abandoned refresh still running
	stuckN atomic.Int32            // abandoned refreshes still running

	failed   atomic.Pointer[failure]  // the last refresh failed, and when to try again
	failCool *damp.Cooldown           // the failure backoff behind failed
	dropped  atomic.Pointer[entry[T]] // the last token a server rejected
	saving   atomic.Pointer[entry[T]] // a new token being saved, not yet in service

	mu     sync.Mutex // guards closed and wg.Add
	closed bool

	wg     sync.WaitGroup
	ctx    context.Context // canceled by Close: no new refresh, attempt or wait
	cancel context.CancelFunc
	// drain is the parent of every refresh's context: Close cancels it
	// only after waiting for the refreshes (each at most abandonGrace), so
	// a token request in flight when Close is called gets its answer and
	// saves it. Canceled at once, that answer would be lost while the
	// endpoint has already redeemed the refresh token, and with rotation
	// the stored one is then dead: the next process gets invalid_grant.
	drain     context.Context
	stopDrain context.CancelFunc

	fetches, fetchErrors, storeLoads, storeErrors, invalidations, replays atomic.Int64

	// Seams for tests.
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func(max time.Duration) time.Duration
}

// entry is a token in service with its precomputed header and windows.
type entry[T any] struct {
	tok      T
	id       string   // the kind's ID of tok
	early    T        // tok with its expiry moved up, for TokenSource (a headerKind's)
	auth     []string // Authorization header value (a headerKind's)
	obtained time.Time
	staleAt  time.Time // zero: never stale
	expireAt time.Time // zero: never expires
	replaced bool      // fetched because a server rejected the token before it
	// bgAfter holds, in Unix nanoseconds, the earliest time a new
	// background refresh may start for this entry: a failed loop sets it
	// so requests in the stale window do not restart it one by one.
	bgAfter atomic.Int64
}
