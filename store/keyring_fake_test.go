package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zalando/go-keyring"
)

// fakeKeyring is an in-memory keyringBackend with the limits of the real
// ones (Windows: 2560 bytes per secret) and fault injection. It lets the
// edge cases run without keyring.MockInit, which is global.
type fakeKeyring struct {
	mu        sync.Mutex
	items     map[string]string // service + "\x00" + user
	maxLen    int
	failSetIn int   // when > 0, the failSetIn-th Set from now fails
	down      error // when set, every call fails with it
	failDel   bool  // when set, Delete fails
	block     chan struct{}
}

func newFakeKeyring() *fakeKeyring {
	return &fakeKeyring{items: map[string]string{}, maxLen: 2560}
}

var errInjected = errors.New("injected failure")

func (f *fakeKeyring) wait() {
	if f.block != nil {
		<-f.block
	}
}

func (f *fakeKeyring) Get(service, user string) (string, error) {
	f.wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down != nil {
		return "", f.down
	}
	v, ok := f.items[service+"\x00"+user]
	if !ok {
		return "", keyring.ErrNotFound
	}
	return v, nil
}

func (f *fakeKeyring) Set(service, user, pw string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down != nil {
		return f.down
	}
	if f.failSetIn > 0 {
		f.failSetIn--
		if f.failSetIn == 0 {
			return errInjected
		}
	}
	if len(pw) > f.maxLen {
		return keyring.ErrSetDataTooBig
	}
	f.items[service+"\x00"+user] = pw
	return nil
}

func (f *fakeKeyring) Delete(service, user string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down != nil {
		return f.down
	}
	if f.failDel {
		return errInjected
	}
	if _, ok := f.items[service+"\x00"+user]; !ok {
		return keyring.ErrNotFound
	}
	delete(f.items, service+"\x00"+user)
	return nil
}

// users lists the accounts stored for service.
func (f *fakeKeyring) users(service string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for k := range f.items {
		if s, u, _ := strings.Cut(k, "\x00"); s == service {
			out = append(out, u)
		}
	}
	slices.Sort(out)
	return out
}

func newFakeKeyringStore(t *testing.T) (*keyringStore, *fakeKeyring) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // lock files
	f := newFakeKeyring()
	return &keyringStore{service: "svc", kr: f}, f
}

func chunkUsers(key, slot string, n int) []string {
	var out []string
	for i := range n {
		out = append(out, chunkName(key, slot, i))
	}
	return out
}

func TestKeyringChunkingRoundTrip(t *testing.T) {
	s, _ := newFakeKeyringStore(t)
	for _, n := range []int{0, 1, 1499, 1500, 1501, 3000, 10 << 10, 100 << 10} {
		v := bytes.Repeat([]byte{byte(n)}, n)
		require.NoError(t, s.Save(ctx, "k", v), n)
		got, err := s.Load(ctx, "k")
		require.NoError(t, err, n)
		assert.True(t, bytes.Equal(v, got), "size %d", n)
	}
	_, err := s.Load(ctx, "missing")
	assert.ErrorIs(t, err, ErrNotFound)
	assert.ErrorIs(t, s.Save(ctx, "k", make([]byte, MaxValueSize+1)), ErrTooLarge)
	assert.ErrorContains(t, s.Save(ctx, "nul\x00", []byte("v")), "UTF-8")
	_, err = s.Load(ctx, "bad\xff")
	assert.ErrorContains(t, err, "UTF-8")
}

func TestKeyringOverwriteLeavesNoOrphans(t *testing.T) {
	s, f := newFakeKeyringStore(t)
	big := bytes.Repeat([]byte("x"), 10<<10) // 13656 base64 chars: 7 chunks
	small := []byte("small")
	bigger := bytes.Repeat([]byte("y"), 20<<10) // 14 chunks

	require.NoError(t, s.Save(ctx, "k", big))
	assert.ElementsMatch(t, append([]string{"k"}, chunkUsers("k", "a", 7)...), f.users("svc"))
	require.NoError(t, s.Save(ctx, "k", bigger))
	assert.ElementsMatch(t, append([]string{"k"}, chunkUsers("k", "b", 14)...), f.users("svc"))
	require.NoError(t, s.Save(ctx, "k", big))
	assert.ElementsMatch(t, append([]string{"k"}, chunkUsers("k", "a", 7)...), f.users("svc"))
	require.NoError(t, s.Save(ctx, "k", small))
	assert.Equal(t, []string{"k"}, f.users("svc"))
	require.NoError(t, s.Save(ctx, "k", bigger))
	require.NoError(t, s.Save(ctx, "k", big))
	assert.ElementsMatch(t, append([]string{"k"}, chunkUsers("k", "b", 7)...), f.users("svc"))
	got, err := s.Load(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, big, got)

	require.NoError(t, s.Delete(ctx, "k"))
	assert.Empty(t, f.users("svc"))
	require.NoError(t, s.Delete(ctx, "k"), "deleting a missing key is not an error")
}

func TestKeyringInterruptedSaveKeepsOldValueAndIsSwept(t *testing.T) {
	s, f := newFakeKeyringStore(t)
	old := bytes.Repeat([]byte("o"), 5<<10)
	require.NoError(t, s.Save(ctx, "k", old))
	before := f.users("svc")
	for failAt := 1; failAt <= 16; failAt++ {
		f.failSetIn = failAt
		err := s.Save(ctx, "k", bytes.Repeat([]byte("n"), 20<<10)) // 14 chunks + manifest
		if err == nil {
			continue // failure point beyond this Save's Sets
		}
		f.failSetIn = 0
		assert.ErrorIs(t, err, errInjected)
		got, err := s.Load(ctx, "k")
		require.NoError(t, err, "fail at %d", failAt)
		assert.Equal(t, old, got, "an interrupted Save leaves the old value")
	}
	f.failSetIn = 0
	// The next Saves find and remove whatever the interrupted ones left.
	require.NoError(t, s.Save(ctx, "k", old))
	require.NoError(t, s.Save(ctx, "k", old))
	assert.Len(t, f.users("svc"), len(before))
	require.NoError(t, s.Save(ctx, "k", []byte("x")))
	assert.Equal(t, []string{"k"}, f.users("svc"))
}

func TestKeyringFailedCleanupDoesNotFailSave(t *testing.T) {
	s, f := newFakeKeyringStore(t)
	require.NoError(t, s.Save(ctx, "k", bytes.Repeat([]byte("o"), 5<<10)))
	f.failDel = true
	require.NoError(t, s.Save(ctx, "k", []byte("new")), "the value is saved even if old chunks stay")
	got, err := s.Load(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "new", string(got))
	assert.Greater(t, len(f.users("svc")), 1)
	f.failDel = false
	require.NoError(t, s.Save(ctx, "k", []byte("newer")))
	assert.Equal(t, []string{"k"}, f.users("svc"), "the next Save removes the leftovers")
}

func TestKeyringReaderRacingWriter(t *testing.T) {
	s, _ := newFakeKeyringStore(t)
	values := [][]byte{
		bytes.Repeat([]byte("a"), 9000),
		[]byte("small"),
		bytes.Repeat([]byte("b"), 4000),
		bytes.Repeat([]byte("c"), 12000),
	}
	require.NoError(t, s.Save(ctx, "k", values[0]))
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for i := range 100 {
			assert.NoError(t, s.Save(ctx, "k", values[i%len(values)]))
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			got, err := s.Load(ctx, "k")
			if errors.Is(err, ErrFormat) {
				continue // a reader can lose the race keyringReadTries times; never a wrong value
			}
			if !assert.NoError(t, err) {
				return
			}
			assert.True(t, slices.ContainsFunc(values, func(v []byte) bool { return bytes.Equal(v, got) }), "torn read: %d bytes", len(got))
		}
	})
	wg.Wait()
}

func TestKeyringForeignEntry(t *testing.T) {
	s, f := newFakeKeyringStore(t)
	require.NoError(t, f.Set("svc", "k", "someone else's password"))
	_, err := s.Load(ctx, "k")
	assert.ErrorIs(t, err, ErrFormat)
	assert.NotContains(t, err.Error(), "someone else's password")
	require.NoError(t, f.Set("svc", "k", keyringChunked+"a:3:"+strings.Repeat("0", 64)))
	_, err = s.Load(ctx, "k")
	assert.ErrorIs(t, err, ErrFormat, "manifest without chunks")
	require.NoError(t, s.Save(ctx, "k", []byte("mine")))
	got, err := s.Load(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, "mine", string(got))
}

func TestKeyringUnavailableIsClassified(t *testing.T) {
	s, f := newFakeKeyringStore(t)
	f.down = errors.New("The name org.freedesktop.secrets was not provided by any .service files")
	_, err := s.Load(ctx, "k")
	require.ErrorIs(t, err, ErrKeyringUnavailable)
	assert.Contains(t, err.Error(), "org.freedesktop.secrets")
	assert.Contains(t, err.Error(), "TOKENMGR_STORE=file")
	assert.ErrorIs(t, s.Save(ctx, "k", []byte("v")), ErrKeyringUnavailable)
	assert.ErrorIs(t, s.Delete(ctx, "k"), ErrKeyringUnavailable)
	assert.Equal(t, "keyring(svc)", s.String())
}

func TestKeyringLoadRespectsContext(t *testing.T) {
	s, f := newFakeKeyringStore(t)
	f.block = make(chan struct{})
	defer close(f.block)
	c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err := s.Load(c, "k")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestKeyringCallTimeout(t *testing.T) {
	s, f := newFakeKeyringStore(t)
	old := keyringCallTimeout
	keyringCallTimeout = 50 * time.Millisecond
	defer func() { keyringCallTimeout = old }()
	f.block = make(chan struct{})
	defer close(f.block)
	_, err := s.Load(ctx, "k")
	require.ErrorIs(t, err, ErrKeyringUnavailable)
	assert.Contains(t, err.Error(), "no answer")
	assert.ErrorIs(t, s.Save(ctx, "k", []byte("v")), ErrKeyringUnavailable)
}

func TestKeyringLockIsPerServiceAndKey(t *testing.T) {
	s, _ := newFakeKeyringStore(t)
	other := &keyringStore{service: "other", kr: s.kr}
	unlock, err := s.Lock(ctx, "k")
	require.NoError(t, err)
	c, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	_, err = s.Lock(c, "k")
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	u2, err := other.Lock(ctx, "k")
	require.NoError(t, err, "another service's key is another lock")
	u2()
	// Save takes its own lock, so saving under the refresh lock works.
	require.NoError(t, s.Save(ctx, "k", []byte("v")))
	unlock()
	u3, err := s.Lock(ctx, "k")
	require.NoError(t, err)
	u3()
	dir, err := lockDir()
	require.NoError(t, err)
	assert.FileExists(t, filepath.Join(dir, keyHash("svc", "k")+".lock"))
}

func TestAutoBranches(t *testing.T) {
	t.Run("keyring answers", func(t *testing.T) {
		f := newFakeKeyring()
		s, err := autoWith(ctx, f, "svc", filepath.Join(t.TempDir(), "f.enc"), []byte("pw"))
		require.NoError(t, err)
		assert.Equal(t, "keyring(svc)", fmt.Sprint(s))
		assert.Empty(t, f.users("svc"), "the probe writes nothing")
	})
	t.Run("no keyring, passphrase", func(t *testing.T) {
		f := newFakeKeyring()
		f.down = errors.New("dbus: couldn't determine address of session bus")
		path := filepath.Join(t.TempDir(), "f.enc")
		s, err := autoWith(ctx, f, "svc", path, []byte("pw"))
		require.NoError(t, err)
		assert.Equal(t, "file("+path+")", fmt.Sprint(s))
	})
	t.Run("no keyring, default path", func(t *testing.T) {
		t.Setenv("XDG_CONFIG_HOME", t.TempDir())
		f := newFakeKeyring()
		f.down = errors.New("no bus")
		s, err := autoWith(ctx, f, "svc", "", []byte("pw"))
		require.NoError(t, err)
		want, _ := DefaultFilePath()
		assert.Equal(t, "file("+want+")", fmt.Sprint(s))
	})
	t.Run("no keyring, no passphrase", func(t *testing.T) {
		f := newFakeKeyring()
		f.down = errors.New("dbus: couldn't determine address of session bus")
		_, err := autoWith(ctx, f, "svc", "", nil)
		require.ErrorIs(t, err, ErrKeyringUnavailable)
		for _, want := range []string{"TOKENMGR_STORE_PASSPHRASE", "TOKENMGR_STORE_PASSPHRASE_FILE", "Secret Service", "couldn't determine address"} {
			assert.Contains(t, err.Error(), want)
		}
	})
	t.Run("keyring hangs", func(t *testing.T) {
		old := autoProbeTimeout
		autoProbeTimeout = 50 * time.Millisecond
		defer func() { autoProbeTimeout = old }()
		f := newFakeKeyring()
		f.block = make(chan struct{})
		defer close(f.block)
		path := filepath.Join(t.TempDir(), "f.enc")
		s, err := autoWith(ctx, f, "svc", path, []byte("pw"))
		require.NoError(t, err)
		assert.Equal(t, "file("+path+")", fmt.Sprint(s))
		_, err = autoWith(ctx, f, "svc", "", nil)
		assert.ErrorIs(t, err, ErrKeyringUnavailable)
		assert.Contains(t, err.Error(), "no answer")
	})
	t.Run("context done", func(t *testing.T) {
		c, cancel := context.WithCancel(ctx)
		cancel()
		f := newFakeKeyring()
		f.block = make(chan struct{})
		defer close(f.block)
		_, err := autoWith(c, f, "svc", "", []byte("pw"))
		assert.ErrorIs(t, err, context.Canceled)
	})
}

// A credential's name can never be another credential's chunk.
func TestKeyringChunkNamesCannotCollide(t *testing.T) {
	ks, _ := newFakeKeyringStore(t)
	ctx := context.Background()
	require.NoError(t, ks.Save(ctx, "x#a#0", []byte("other credential")))
	require.NoError(t, ks.Save(ctx, "x", bytes.Repeat([]byte("A"), 4000))) // chunked
	got, err := ks.Load(ctx, "x#a#0")
	require.NoError(t, err)
	require.Equal(t, "other credential", string(got), `credential "x#a#0" damaged by a Save of "x"`)
	require.Error(t, ks.Save(ctx, chunkPrefix+"y", []byte("v")), "a key with the reserved chunk prefix is refused")
}

// overlapKeyring, once armed, makes each chunk Get wait (up to 5 s) until
// another chunk Get is in flight too, and records the most seen at once.
type overlapKeyring struct {
	*fakeKeyring
	mu             sync.Mutex
	armed          bool
	inFlight, most int
	another        chan struct{}
	once           sync.Once
}

func (o *overlapKeyring) Get(service, user string) (string, error) {
	o.mu.Lock()
	armed := o.armed && strings.HasPrefix(user, chunkPrefix)
	if armed {
		o.inFlight++
		o.most = max(o.most, o.inFlight)
		if o.inFlight == 2 {
			o.once.Do(func() { close(o.another) })
		}
	}
	o.mu.Unlock()
	if armed {
		select {
		case <-o.another:
		case <-time.After(5 * time.Second):
		}
		defer func() { o.mu.Lock(); o.inFlight--; o.mu.Unlock() }()
	}
	return o.fakeKeyring.Get(service, user)
}

// TestKeyringChunksReadInParallel: a chunked value's chunks are read
// several at a time, since each read is round trips to the keyring daemon
// (a 6 KiB id_token took ~22 ms per `tokenmgr token` read one by one).
func TestKeyringChunksReadInParallel(t *testing.T) {
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // lock files
	o := &overlapKeyring{fakeKeyring: newFakeKeyring(), another: make(chan struct{})}
	s := &keyringStore{service: "svc", kr: o}
	v := bytes.Repeat([]byte("z"), 6<<10) // 8192 base64 chars: 5 chunks
	require.NoError(t, s.Save(ctx, "k", v))
	o.mu.Lock()
	o.armed = true
	o.mu.Unlock()
	start := time.Now()
	got, err := s.Load(ctx, "k")
	require.NoError(t, err)
	assert.Equal(t, v, got)
	assert.GreaterOrEqual(t, o.most, 2, "chunk reads overlapped")
	assert.Less(t, time.Since(start), 5*time.Second, "no chunk read waited for its timeout")
}
