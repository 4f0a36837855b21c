//go:build unix

package redisstore

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// cmdCounter is a go-redis hook counting the commands a client sends, each
// one a round trip (the Store sends no pipelines), and the runs of each
// script (EVALSHA, or EVAL after NOSCRIPT) by its SHA-1.
type cmdCounter struct {
	mu      sync.Mutex
	cmds    map[string]int // command name → count
	scripts map[string]int // script SHA-1 → EVALSHA + EVAL count
}

func countCommands(c *redis.Client) *cmdCounter {
	n := &cmdCounter{}
	n.reset()
	c.AddHook(n)
	return n
}

func (n *cmdCounter) reset() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cmds, n.scripts = map[string]int{}, map[string]int{}
}

func (n *cmdCounter) count(cmd redis.Cmder) {
	n.mu.Lock()
	defer n.mu.Unlock()
	name := cmd.Name()
	n.cmds[name]++
	args := cmd.Args()
	if len(args) < 2 {
		return
	}
	switch name {
	case "evalsha":
		sha, _ := args[1].(string)
		n.scripts[sha]++
	case "eval":
		src, _ := args[1].(string)
		sum := sha1.Sum([]byte(src))
		n.scripts[hex.EncodeToString(sum[:])]++
	}
}

// commands returns the counts since the last reset: per command, in all,
// and of the save script.
func (n *cmdCounter) commands() (per map[string]int, total, saves int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	per = map[string]int{}
	for k, v := range n.cmds {
		per[k] = v
		total += v
	}
	return per, total, n.scripts[saveScript.Hash()]
}

func (n *cmdCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (n *cmdCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		n.count(cmd)
		return next(ctx, cmd)
	}
}

func (n *cmdCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		for _, c := range cmds {
			n.count(c)
		}
		return next(ctx, cmds)
	}
}

// A refresh loads the stored value under its lease and then saves over
// it: the Load authenticated exactly the value the Save replaces, so the
// save script runs once (it used to run twice, the first time only to
// send the whole value back for the writer to authenticate). The same
// holds for a second Save after a Save, and for a save without a lease.
func TestSaveAfterLoadRunsTheSaveScriptOnce(t *testing.T) {
	srv := startRedis(t)
	ctx := context.Background()
	ac := srv.Client(t)
	a := newStore(t, ac, Options{Lease: time.Minute})
	b := newStore(t, srv.Client(t), Options{Lease: time.Minute})
	n := countCommands(ac)
	// Another replica's value is there; a's client has the scripts loaded.
	require.NoError(t, b.Save(ctx, credName, tokenRecord(t, "at-SECRET-b", "rt-SECRET-b", time.Now().Add(time.Hour))))
	unlock, err := a.Lock(ctx, credName)
	require.NoError(t, err)
	unlock()
	require.NoError(t, a.Save(ctx, "warm-up", tokenRecord(t, "at-SECRET-w", "rt-SECRET-w", time.Now().Add(time.Hour))))

	// The refresh: lease, load, save, release.
	n.reset()
	unlock, err = a.Lock(ctx, credName)
	require.NoError(t, err)
	_, err = a.Load(ctx, credName)
	require.NoError(t, err)
	next := tokenRecord(t, "at-SECRET-a", "rt-SECRET-a", time.Now().Add(time.Hour))
	require.NoError(t, a.Save(ctx, credName, next))
	unlock()
	per, total, saves := n.commands()
	t.Logf("lease, load, save, release: %d round trips %v", total, per)
	assert.Equal(t, 1, saves, "save script runs for a Save after a Load of the value it replaces")
	assert.Zero(t, per["eval"], "no script was sent in full")
	// take, GET, save, SET NX header (shareHeader), release.
	assert.Equal(t, 5, total, "round trips for lease, load, save, release")
	got, err := b.Load(ctx, credName)
	require.NoError(t, err)
	assert.Equal(t, next, got)

	// Load then Save without a lease (Redis's clock is the fence).
	n.reset()
	_, err = a.Load(ctx, credName)
	require.NoError(t, err)
	require.NoError(t, a.Save(ctx, credName, tokenRecord(t, "at-SECRET-a2", "rt-SECRET-a2", time.Now().Add(time.Hour))))
	_, _, saves = n.commands()
	assert.Equal(t, 1, saves, "save script runs for Load then Save without a lease")

	// Save after Save: the Store knows the bytes it stored.
	n.reset()
	require.NoError(t, a.Save(ctx, credName, tokenRecord(t, "at-SECRET-a3", "rt-SECRET-a3", time.Now().Add(time.Hour))))
	_, _, saves = n.commands()
	assert.Equal(t, 1, saves, "save script runs for Save after Save")
	got, err = b.Load(ctx, credName)
	require.NoError(t, err)
	assert.Contains(t, string(got), "at-SECRET-a3")
}

// When the value changed between the Load and the Save, the digest the
// Store remembered no longer matches: the script sends the value back,
// the Store authenticates it and saves over it on a second run if it
// opens, and refuses (leaving it untouched) if it does not.
func TestSaveVetsAValueThatChangedSinceLoad(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	ac := srv.Client(t)
	a := newStore(t, ac, Options{})
	b := newStore(t, srv.Client(t), Options{})
	n := countCommands(ac)
	vk := a.valueKey(credName)
	require.NoError(t, b.Save(ctx, credName, tokenRecord(t, "at-SECRET-1", "rt-SECRET-1", time.Now().Add(time.Hour))))
	require.NoError(t, a.Save(ctx, "warm-up", tokenRecord(t, "at-SECRET-w", "rt-SECRET-w", time.Now().Add(time.Hour))))

	// Another replica saved after a's Load: a vets its value and replaces it.
	_, err := a.Load(ctx, credName)
	require.NoError(t, err)
	require.NoError(t, b.Save(ctx, credName, tokenRecord(t, "at-SECRET-2", "rt-SECRET-2", time.Now().Add(time.Hour))))
	n.reset()
	mine := tokenRecord(t, "at-SECRET-3", "rt-SECRET-3", time.Now().Add(time.Hour))
	require.NoError(t, a.Save(ctx, credName, mine))
	_, _, saves := n.commands()
	assert.Equal(t, 2, saves, "save script runs when the value changed since the Load")
	got, err := b.Load(ctx, credName)
	require.NoError(t, err)
	assert.Equal(t, mine, got)

	// A value that fails authentication appeared after a's Load: refused,
	// untouched, and the Store remembers nothing for it.
	_, err = a.Load(ctx, credName)
	require.NoError(t, err)
	v, err := rdb.Get(ctx, vk).Bytes()
	require.NoError(t, err)
	bad := bytes.Clone(v)
	bad[len(bad)-1] ^= 1
	require.NoError(t, rdb.Set(ctx, vk, bad, 0).Err())
	assertRefused(t, rdb, vk, bad, a.Save(ctx, credName, tokenRecord(t, "at-SECRET-4", "rt-SECRET-4", time.Now().Add(time.Hour))), store.ErrTampered)
	assert.Empty(t, a.lastSeen(credName))
	assertRefused(t, rdb, vk, bad, a.Save(ctx, credName, tokenRecord(t, "at-SECRET-4", "rt-SECRET-4", time.Now().Add(time.Hour))), store.ErrTampered)

	// The value put back byte for byte is the one a authenticated: saved.
	require.NoError(t, rdb.Set(ctx, vk, v, 0).Err())
	require.NoError(t, a.Save(ctx, credName, mine))
}

// The digests are kept per credential, at most one each, hold no secret,
// and are dropped by Delete and by a Load that finds nothing or a value
// that does not open; the Store stays safe for concurrent use by many
// goroutines on many credentials (run with -race).
func TestSeenDigestsBoundedAndSafeForConcurrentUse(t *testing.T) {
	srv := startRedis(t)
	rdb := srv.Client(t)
	ctx := context.Background()
	a := newStore(t, srv.Client(t), Options{Lease: time.Minute})
	b := newStore(t, srv.Client(t), Options{Lease: time.Minute})
	const names, rounds = 4, 20
	var wg sync.WaitGroup
	for i := range names {
		name := fmt.Sprintf("cred-%d", i)
		for _, s := range []*Store{a, b, a} {
			wg.Go(func() {
				for r := range rounds {
					unlock, err := s.Lock(ctx, name)
					if !assert.NoError(t, err) {
						return
					}
					_, err = s.Load(ctx, name)
					if err != nil {
						assert.ErrorIs(t, err, store.ErrNotFound)
					}
					assert.NoError(t, s.Save(ctx, name, tokenRecord(t, fmt.Sprintf("at-SECRET-%d", r), "rt-SECRET", time.Now().Add(time.Hour))))
					unlock()
				}
			})
		}
	}
	wg.Wait()

	for _, s := range []*Store{a, b} {
		s.mu.Lock()
		assert.Len(t, s.seen, names, "one digest per credential")
		for name, d := range s.seen {
			assert.Regexp(t, "^[0-9a-f]{40}$", d, "a SHA-1 in hex, nothing else")
			assert.NotContains(t, d, "SECRET")
			assert.Contains(t, name, "cred-")
		}
		s.mu.Unlock()
	}
	// b saved last or a did: whichever saved last knows the stored bytes.
	for i := range names {
		name := fmt.Sprintf("cred-%d", i)
		v, err := rdb.Get(ctx, a.valueKey(name)).Bytes()
		require.NoError(t, err)
		sum := sha1.Sum(v)
		assert.Contains(t, []string{a.lastSeen(name), b.lastSeen(name)}, hex.EncodeToString(sum[:]))
	}

	require.NoError(t, a.Delete(ctx, "cred-0"))
	_, err := b.Load(ctx, "cred-0")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.NoError(t, rdb.Set(ctx, a.valueKey("cred-1"), "garbage", 0).Err())
	_, err = a.Load(ctx, "cred-1")
	require.ErrorIs(t, err, store.ErrFormat)
	_, err = a.Load(ctx, "never-saved")
	require.ErrorIs(t, err, store.ErrNotFound)
	for _, s := range []*Store{a, b} {
		assert.Empty(t, s.lastSeen("cred-0"), "dropped by Delete, or by a Load that found nothing")
		assert.Empty(t, s.lastSeen("never-saved"))
	}
	assert.Empty(t, a.lastSeen("cred-1"), "dropped by a Load of a value that does not open")
	a.mu.Lock()
	assert.Len(t, a.seen, names-2)
	a.mu.Unlock()
}

// A Client's refresh of a credential already in Redis (lease, load, save,
// release) costs five round trips with one save script run, as README
// says; adopting the token another replica stored costs three.
func TestClientRefreshRoundTrips(t *testing.T) {
	srv := startRedis(t)
	ts := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	t.Cleanup(ts.Close)
	ctx := context.Background()
	ac := srv.Client(t)
	st := newStore(t, ac, Options{Key: bytes.Repeat([]byte{3}, 32)})
	n := countCommands(ac)
	c, err := tokenmgr.New(tokenmgr.Config{Source: benchSource(ts), Store: st, Key: credName, Logger: quiet})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	tok, err := c.Token(ctx)
	require.NoError(t, err)

	n.reset()
	c.Invalidate(tok)
	_, err = c.Token(ctx)
	require.NoError(t, err)
	per, total, saves := n.commands()
	t.Logf("refresh: %d round trips %v", total, per)
	assert.Equal(t, 1, saves, "save script runs per refresh")
	assert.Equal(t, 5, total, "round trips per refresh")

	// A second replica's first token: the one in Redis.
	bc := srv.Client(t)
	st2 := newStore(t, bc, Options{Key: bytes.Repeat([]byte{3}, 32)})
	n2 := countCommands(bc)
	c2, err := tokenmgr.New(tokenmgr.Config{Source: benchSource(ts), Store: st2, Key: credName, Logger: quiet})
	require.NoError(t, err)
	t.Cleanup(func() { c2.Close() })
	_, err = c2.Token(ctx)
	require.NoError(t, err)
	per, total, saves = n2.commands()
	t.Logf("first token from Redis: %d round trips %v", total, per)
	assert.Zero(t, saves)
}
