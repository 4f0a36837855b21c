package store

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/zalando/go-keyring"
	"golang.org/x/sync/errgroup"
)

// Keyring layout: see the package documentation. Values whose base64 form
// is longer than the store's chunk size are chunked: keyringChunkSize
// where entries are small (macOS, Windows), osChunkSize on the OS keyring
// elsewhere. Readers accept any chunk size, up to keyringMaxChunks chunks.
const (
	keyringChunkSize = 2000
	keyringPrefix    = "tokenmgr:v1:"
	keyringInline    = keyringPrefix + "i:"
	keyringChunked   = keyringPrefix + "c:"
	keyringMaxChunks = (MaxValueSize*4/3)/keyringChunkSize + 2
	keyringReadTries = 4
	// keyringParallelReads bounds the chunk reads in flight at once.
	keyringParallelReads = 4
)

// keyringBackend is the part of go-keyring the store uses; tests substitute
// a fake for edge cases without touching the global keyring.MockInit.
type keyringBackend interface {
	Get(service, user string) (string, error)
	Set(service, user, password string) error
	Delete(service, user string) error
}

type osKeyring struct{}

func (osKeyring) Get(service, user string) (string, error) { return keyring.Get(service, user) }
func (osKeyring) Set(service, user, pw string) error       { return keyring.Set(service, user, pw) }
func (osKeyring) Delete(service, user string) error        { return keyring.Delete(service, user) }

// NewKeyring returns a Store keeping each credential as a secret of the
// operating system's keyring (macOS Keychain, Windows Credential Manager,
// the Secret Service on Linux, e.g. gnome-keyring or KeePassXC) under the
// given service name, with the credential's key as the account.
//
// Values too large for one keyring entry are split into chunks (see the
// package documentation). When no keyring answers, operations return an
// error wrapping ErrKeyringUnavailable that says what to do; Auto checks for
// that before choosing this store. The store implements Locker with lock
// files under os.UserCacheDir()/tokenmgr/locks, shared by all processes of
// the user.
func NewKeyring(service string) Store {
	return newOSKeyringStore(service)
}

func newOSKeyringStore(service string) *keyringStore {
	return &keyringStore{service: service, kr: osKeyring{}, chunk: osChunkSize}
}

// osChunkSize is the chunk size on this platform's OS keyring: the Keychain
// and Credential Manager cap an entry at a few kilobytes; a Secret Service
// (Linux, the BSDs) does not, and every chunk costs a read of several D-Bus
// round trips, so there a record with a 6 KiB id_token is one entry.
var osChunkSize = func() int {
	switch runtime.GOOS {
	case "darwin", "ios", "windows":
		return keyringChunkSize
	}
	return 8 * keyringChunkSize
}()

type keyringStore struct {
	service string
	kr      keyringBackend
	chunk   int // chunk size for writing; 0 means keyringChunkSize
}

// chunkSize is the longest base64 text Save puts in one entry.
func (k *keyringStore) chunkSize() int {
	if k.chunk > 0 {
		return k.chunk
	}
	return keyringChunkSize
}

// String names the store by its service; it holds no secret.
func (k *keyringStore) String() string { return "keyring(" + k.service + ")" }

// keyringHint says how to get out of a missing keyring.
func keyringHint() string {
	if runtime.GOOS == "linux" || strings.HasSuffix(runtime.GOOS, "bsd") {
		return "start a Secret Service (e.g. gnome-keyring-daemon under dbus-run-session) or use TOKENMGR_STORE=file with TOKENMGR_STORE_PASSPHRASE"
	}
	return "use TOKENMGR_STORE=file with TOKENMGR_STORE_PASSPHRASE"
}

// keyringError reports a keyring that did not answer. It matches
// ErrKeyringUnavailable and the underlying error under errors.Is.
type keyringError struct {
	store string
	cause error
}

func (e *keyringError) Error() string {
	return fmt.Sprintf("store: %s: OS keyring unavailable (%v); %s", e.store, e.cause, keyringHint())
}

func (e *keyringError) Unwrap() []error { return []error{ErrKeyringUnavailable, e.cause} }

// classify turns a go-keyring error into this package's errors. Every error
// other than "not found" and "too big" means the keyring cannot be used:
// no session bus, no Secret Service on it, a locked collection that cannot
// be unlocked, an unsupported platform.
func (k *keyringStore) classify(key string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, keyring.ErrNotFound):
		return fmt.Errorf("store: %s: key %q: %w", k, key, ErrNotFound)
	case errors.Is(err, keyring.ErrSetDataTooBig):
		return fmt.Errorf("store: %s: key %q: %w for one keyring entry", k, key, ErrTooLarge)
	default:
		return &keyringError{store: k.String(), cause: err}
	}
}

// keyringCallTimeout bounds one keyring call. go-keyring cannot be
// cancelled, and on Linux a locked collection makes it wait for an unlock
// prompt that a headless session never shows; a person at a desktop prompt
// gets this long to answer.
var keyringCallTimeout = time.Minute

// call runs one keyring call, waiting at most until ctx is done or
// keyringCallTimeout passes. A call given up on finishes in the background:
// a Set may still land, which is harmless because a value only becomes
// visible through its manifest, and readers verify the chunks' digest.
func (k *keyringStore) call(ctx context.Context, user string, f func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- f() }()
	timer := time.NewTimer(keyringCallTimeout)
	defer timer.Stop()
	select {
	case err := <-done:
		return k.classify(user, err)
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return &keyringError{store: k.String(), cause: fmt.Errorf("no answer within %v (waiting for an unlock prompt?)", keyringCallTimeout)}
	}
}

func (k *keyringStore) get(ctx context.Context, user string) (string, error) {
	var v string
	err := k.call(ctx, user, func() error {
		var err error
		v, err = k.kr.Get(k.service, user)
		return err
	})
	if err != nil {
		return "", err
	}
	return v, nil
}

func (k *keyringStore) set(ctx context.Context, user, v string) error {
	return k.call(ctx, user, func() error { return k.kr.Set(k.service, user, v) })
}

// del deletes one entry; a missing entry is not an error.
func (k *keyringStore) del(ctx context.Context, user string) error {
	err := k.call(ctx, user, func() error { return k.kr.Delete(k.service, user) })
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

func chunkName(key, slot string, i int) string {
	return chunkPrefix + keyHash(key) + "#" + slot + "#" + strconv.Itoa(i)
}

// chunkPrefix starts every chunk's name. Chunks are named by a hash of
// their credential's key, and keys may not start with the prefix, so no
// credential's name can be another's chunk.
const chunkPrefix = "tokenmgr-chunk:"

func checkKeyringKey(k fmt.Stringer, key string) error {
	if err := checkKey(k, key); err != nil {
		return err
	}
	if strings.HasPrefix(key, chunkPrefix) {
		return fmt.Errorf("store: %s: key %q: the prefix %q is reserved", k, key, chunkPrefix)
	}
	return nil
}

// manifest is the parsed entry stored under a credential's key.
type manifest struct {
	inline string // base64 value when not chunked
	slot   string // "a" or "b" when chunked
	chunks int
	digest string // hex sha256 of the value
}

func parseManifest(s string) (manifest, bool) {
	if v, ok := strings.CutPrefix(s, keyringInline); ok {
		return manifest{inline: v}, true
	}
	rest, ok := strings.CutPrefix(s, keyringChunked)
	if !ok {
		return manifest{}, false
	}
	f := strings.Split(rest, ":")
	if len(f) != 3 || (f[0] != "a" && f[0] != "b") || len(f[2]) != 64 {
		return manifest{}, false
	}
	n, err := strconv.Atoi(f[1])
	if err != nil || n < 1 || n > keyringMaxChunks {
		return manifest{}, false
	}
	return manifest{slot: f[0], chunks: n, digest: f[2]}, true
}

// Load reads the value under key. Each keyring call waits at most until
// ctx is done (see keyringCallTimeout).
func (k *keyringStore) Load(ctx context.Context, key string) ([]byte, error) {
	return k.load(ctx, key)
}

func (k *keyringStore) load(ctx context.Context, key string) ([]byte, error) {
	if err := checkKeyringKey(k, key); err != nil {
		return nil, err
	}
	for range keyringReadTries {
		m, err := k.get(ctx, key)
		if err != nil {
			return nil, err
		}
		man, ok := parseManifest(m)
		if !ok {
			return nil, fmt.Errorf("store: %s: key %q: %w: entry was not written by tokenmgr", k, key, ErrFormat)
		}
		if man.chunks == 0 {
			v, err := base64.StdEncoding.DecodeString(man.inline)
			if err != nil {
				return nil, fmt.Errorf("store: %s: key %q: %w: bad base64", k, key, ErrFormat)
			}
			return v, nil
		}
		v, err := k.readChunks(ctx, key, man)
		if errors.Is(err, errChunksChanged) {
			continue // a writer replaced the value while we read; read again
		}
		return v, err
	}
	return nil, fmt.Errorf("store: %s: key %q: %w: chunks kept changing or are missing", k, key, ErrFormat)
}

var errChunksChanged = errors.New("chunks changed")

// readChunks reads a chunked value's chunks, several at a time: each
// keyring read is a few round trips to the keyring daemon, and a 6 KiB
// id_token makes five chunks, which read one after another cost a shell
// loop of `tokenmgr token` more than all the rest of a run.
func (k *keyringStore) readChunks(ctx context.Context, key string, man manifest) ([]byte, error) {
	chunks := make([]string, man.chunks)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(keyringParallelReads)
	for i := range man.chunks {
		g.Go(func() error {
			c, err := k.get(gctx, chunkName(key, man.slot, i))
			if errors.Is(err, ErrNotFound) {
				return errChunksChanged
			}
			chunks[i] = c
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	v, err := base64.StdEncoding.DecodeString(strings.Join(chunks, ""))
	if err != nil {
		return nil, errChunksChanged
	}
	sum := sha256.Sum256(v)
	if hex.EncodeToString(sum[:]) != man.digest {
		return nil, errChunksChanged
	}
	return v, nil
}

// Save stores data under key, chunked when large. Saves of one key are
// serialised across processes by a lock file.
func (k *keyringStore) Save(ctx context.Context, key string, data []byte) error {
	if err := checkKeyringKey(k, key); err != nil {
		return err
	}
	if len(data) > MaxValueSize {
		return fmt.Errorf("store: %s: key %q: %w: %d bytes, limit %d", k, key, ErrTooLarge, len(data), MaxValueSize)
	}
	unlock, err := k.lock(ctx, key, ".w.lock")
	if err != nil {
		return err
	}
	defer unlock()
	old, err := k.currentManifest(ctx, key)
	if err != nil {
		return err
	}
	enc := base64.StdEncoding.EncodeToString(data)
	size := k.chunkSize()
	if len(enc) <= size {
		if err := k.set(ctx, key, keyringInline+enc); err != nil {
			return err
		}
		k.sweepAll(ctx, key) // best effort: the value is saved; the next Save retries
		return nil
	}
	slot := "a"
	if old.slot == "a" {
		slot = "b"
	}
	n := (len(enc) + size - 1) / size
	for i := range n {
		if err := k.set(ctx, chunkName(key, slot, i), enc[i*size:min(len(enc), (i+1)*size)]); err != nil {
			return err
		}
	}
	if err := k.sweep(ctx, key, slot, n); err != nil {
		return err
	}
	sum := sha256.Sum256(data)
	if err := k.set(ctx, key, fmt.Sprintf("%s%s:%d:%x", keyringChunked, slot, n, sum)); err != nil {
		return err
	}
	other := "a"
	if slot == "a" {
		other = "b"
	}
	_ = k.sweep(ctx, key, other, 0) // best effort, as above
	return nil
}

// Delete removes key and its chunks; a missing key is not an error.
func (k *keyringStore) Delete(ctx context.Context, key string) error {
	if err := checkKeyringKey(k, key); err != nil {
		return err
	}
	unlock, err := k.lock(ctx, key, ".w.lock")
	if err != nil {
		return err
	}
	defer unlock()
	if err := k.del(ctx, key); err != nil {
		return err
	}
	k.sweepAll(ctx, key) // best effort: the key is gone; leftovers go next time
	return nil
}

// currentManifest returns the manifest under key; a missing or foreign
// entry counts as none (it is about to be replaced).
func (k *keyringStore) currentManifest(ctx context.Context, key string) (manifest, error) {
	m, err := k.get(ctx, key)
	if errors.Is(err, ErrNotFound) {
		return manifest{}, nil
	}
	if err != nil {
		return manifest{}, err
	}
	man, _ := parseManifest(m)
	return man, nil
}

// sweepAll removes both slots' chunks of key, as far as the keyring lets it.
func (k *keyringStore) sweepAll(ctx context.Context, key string) {
	_ = k.sweep(ctx, key, "a", 0)
	_ = k.sweep(ctx, key, "b", 0)
}

// sweep deletes the chunks of slot from index from on. It first finds the
// end of the run, then deletes backwards, so that an interrupted sweep still
// leaves a run starting at from for the next one to find.
func (k *keyringStore) sweep(ctx context.Context, key, slot string, from int) error {
	end := from
	for ; end < keyringMaxChunks; end++ {
		_, err := k.get(ctx, chunkName(key, slot, end))
		if errors.Is(err, ErrNotFound) {
			break
		}
		if err != nil {
			return err
		}
	}
	for i := end - 1; i >= from; i-- {
		if err := k.del(ctx, chunkName(key, slot, i)); err != nil {
			return err
		}
	}
	return nil
}

// Lock takes the per-credential refresh lock, shared by all processes of
// this user through a lock file under os.UserCacheDir()/tokenmgr/locks.
func (k *keyringStore) Lock(ctx context.Context, key string) (func(), error) {
	return k.lock(ctx, key, ".lock")
}

func (k *keyringStore) lock(ctx context.Context, key, suffix string) (func(), error) {
	path, err := k.lockPath(key, suffix)
	if err != nil {
		return nil, err
	}
	return lockFile(ctx, path)
}

// lockSuffixes end the names of a credential's lock files: refresh, write.
var lockSuffixes = []string{".lock", ".w.lock"}

// lockPath is the lock file of key ending in suffix.
func (k *keyringStore) lockPath(key, suffix string) (string, error) {
	dir, err := lockDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, keyHash(k.service, key)+suffix), nil
}

// lockDir is where the keyring store keeps its lock files.
func lockDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("store: no directory for lock files: %w", err)
	}
	return filepath.Join(dir, "tokenmgr", "locks"), nil
}
