package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tokenmgr/tokenmgr/secretfile"
	"github.com/tokenmgr/tokenmgr/store/seal"
)

// FileOptions tune the key derivation of a new encrypted file. They apply
// when a Save creates the file; an existing file keeps the cost written in
// its header (within the limits this package accepts: N up to 2^20, at most
// 256 MiB of memory and 16 times the default work).
type FileOptions struct {
	// ScryptLogN is log2 of scrypt's N, 10..20; 0 means DefaultScryptLogN.
	ScryptLogN int
	// ScryptR is scrypt's block size r; 0 means DefaultScryptR.
	ScryptR int
	// ScryptP is scrypt's parallelism p; 0 means DefaultScryptP.
	ScryptP int
	// KeyCacheTTL is how long the key derived from the passphrase stays in
	// the session cache, so that the next process opening the file (a
	// command in a shell loop) skips scrypt: the kernel keyring on Linux,
	// never a file nor the OS keyring (which has no expiry); elsewhere each
	// process derives once. Any process of this user may read it while it
	// lasts, also from another container sharing the kernel, and it opens
	// this file without the passphrase (see the package doc). 0 means
	// DefaultKeyCacheTTL; a negative value turns the session cache off (a
	// process still derives once).
	KeyCacheTTL time.Duration
}

// DefaultKeyCacheTTL is how long a key derived from a passphrase stays in
// the session cache ([FileOptions].KeyCacheTTL): long enough for a working
// session of shell commands, short enough that a forgotten terminal does
// not keep it overnight.
const DefaultKeyCacheTTL = seal.DefaultCacheTTL

// DefaultFilePath returns where tokenmgr keeps its encrypted file when none
// is named: credentials.enc in a tokenmgr directory under os.UserConfigDir
// (~/.config/tokenmgr/credentials.enc on Linux).
func DefaultFilePath() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("store: no default file path: %w", err)
	}
	return filepath.Join(dir, "tokenmgr", "credentials.enc"), nil
}

// NewEncryptedFile returns a Store keeping all credentials in one file at
// path, encrypted with XChaCha20-Poly1305 under a key derived from
// passphrase with scrypt at the default cost. The key is derived once per
// store, not on every Load or Save.
//
// A missing file is an empty store, created by the first Save (0600, in a
// directory created 0700 when missing). An existing file is opened now, so a
// wrong passphrase (ErrWrongKey), a modified file (ErrTampered) or a file
// this version cannot read ([ErrFormat]) is reported here, naming the file;
// such a file is never overwritten. What is at path must be a regular file
// (a FIFO, device or directory is refused without being read); a symbolic
// link is followed, also to a file not created yet, and stays a link: Saves
// rename over the file it points to. On unix, as ssh does for private keys,
// a file other users may read or change, or a directory (the store's or one
// above it) they may write or own, is refused with [ErrUnsafePermissions] and
// the chmod that fixes it. The store implements [Locker] with lock
// files beside that real file, which on unix exclude other processes too.
//
// Options: a [FileOptions] value (the scrypt cost of a file it creates,
// the session key cache); [WithKey], a random 32-byte key instead of a
// passphrase (passphrase nil; no key derivation, opening is instant); or
// [WithKeyring], such a key kept in the OS keyring.
func NewEncryptedFile(path string, passphrase []byte, opts ...FileOption) (Store, error) {
	var c fileConfig
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	switch {
	case c.key != nil && c.keyring != nil:
		return nil, errors.New("store: encrypted file: both WithKey and WithKeyring given; give one")
	case (c.key != nil || c.keyring != nil) && len(passphrase) > 0:
		return nil, errors.New("store: encrypted file: a passphrase and a key given; give one")
	case c.key != nil:
		return openRawKeyFile(path, c.key, "")
	case c.keyring != nil:
		return newEncryptedFileWithKeyring(c.keyring.ctx, path, newOSKeyringStore(c.keyring.service))
	}
	return newPassphraseFile(path, passphrase, c.opts)
}

// A FileOption is an option of [NewEncryptedFile]: a [FileOptions] value,
// [WithKey] or [WithKeyring].
type FileOption interface{ apply(*fileConfig) }

// fileConfig is what the options of NewEncryptedFile set.
type fileConfig struct {
	opts    FileOptions
	key     []byte
	keyring *keyringKey
}

type keyringKey struct {
	ctx     context.Context
	service string
}

func (o FileOptions) apply(c *fileConfig) { c.opts = o }

type keyOption []byte

func (k keyOption) apply(c *fileConfig) { c.key = k }

// WithKey opens the file with a random 32-byte key instead of a
// passphrase (give a nil passphrase): no key derivation runs, so opening
// is instant. Keep the key somewhere safer than the file (see
// [WithKeyring]).
func WithKey(key []byte) FileOption { return keyOption(append([]byte{}, key...)) }

type keyringOption keyringKey

func (k keyringOption) apply(c *fileConfig) { kk := keyringKey(k); c.keyring = &kk }

// WithKeyring opens the file with a random 32-byte key kept in the OS
// keyring (service, account "file-key:<absolute path>") instead of a
// passphrase (give a nil passphrase): for keyrings too small or too slow
// for many large entries, with the file beside the program's other state.
// Opening is instant.
//
// The first open of a path that has no file yet creates the key; later
// ones, from any process, read it; ctx bounds the keyring's answer. If the
// file exists but its key is not in the keyring the error wraps
// ErrWrongKey and the file is left alone. A keyring that does not answer
// gives an error wrapping ErrKeyringUnavailable.
func WithKeyring(ctx context.Context, service string) FileOption {
	return keyringOption{ctx: ctx, service: service}
}

// newPassphraseFile opens a file whose key scrypt derives from passphrase.
func newPassphraseFile(path string, passphrase []byte, opts FileOptions) (Store, error) {
	if len(passphrase) == 0 {
		return nil, errors.New("store: encrypted file: empty passphrase")
	}
	if opts.ScryptLogN == 0 {
		opts.ScryptLogN = DefaultScryptLogN
	}
	if opts.ScryptR == 0 {
		opts.ScryptR = DefaultScryptR
	}
	if opts.ScryptP == 0 {
		opts.ScryptP = DefaultScryptP
	}
	if err := defaultLimits.Check(opts.ScryptLogN, opts.ScryptR, opts.ScryptP); err != nil {
		return nil, fmt.Errorf("store: encrypted file options: %v", err)
	}
	var cache seal.Cache
	switch {
	case opts.KeyCacheTTL == 0:
		cache = defaultKeyCache()
	case opts.KeyCacheTTL > 0:
		cache = seal.SessionCache(opts.KeyCacheTTL)
	}
	return openFileStore(path, &fileStore{
		deriver: seal.NewDeriver(passphrase, fileLabels, cache),
		kdf:     kdfScrypt,
		logN:    byte(opts.ScryptLogN), r: byte(opts.ScryptR), p: byte(opts.ScryptP),
	})
}

// defaultKeyCache is the session cache at the default lifetime, probed
// once per process.
var defaultKeyCache = sync.OnceValue(func() seal.Cache {
	return seal.SessionCache(DefaultKeyCacheTTL)
})

// openRawKeyFile opens a raw-key file; keyNote says where the key lives.
func openRawKeyFile(path string, key []byte, keyNote string) (Store, error) {
	if len(key) != rawKeySize {
		return nil, fmt.Errorf("store: encrypted file: key must be %d bytes, got %d", rawKeySize, len(key))
	}
	return openFileStore(path, &fileStore{deriver: seal.NewDeriver(key, fileLabels, nil), kdf: kdfRawKey, keyNote: keyNote})
}

// openFileStore finishes s for path and reads the file once. It returns a
// Store, nil on error: never an interface holding a nil *fileStore.
func openFileStore(path string, s *fileStore) (Store, error) {
	if path == "" {
		return nil, errors.New("store: encrypted file: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: encrypted file %s: %w", path, err)
	}
	if s.path, err = resolveLinks(abs); err != nil {
		return nil, fmt.Errorf("store: encrypted file %s: %w", abs, err)
	}
	s.name = s.path
	if s.path != abs {
		s.name = abs + " -> " + s.path
	}
	if err := checkDirs(s.name, s.path); err != nil {
		return nil, err
	}
	s.lim = defaultLimits
	s.rand = rand.Reader
	if _, _, err := s.read(context.Background()); err != nil {
		return nil, err
	}
	return s, nil
}

// fileStore is the encrypted file store. All credentials live in one file,
// so Save and Delete rewrite it whole, under a lock file that serialises
// writers across processes, after re-reading it under that lock.
type fileStore struct {
	path    string        // absolute, symbolic links resolved: the file read, renamed over and locked beside
	name    string        // path as given (absolute), and where it leads if that differs: for messages
	deriver *seal.Deriver // the passphrase (kdfScrypt) or key (kdfRawKey) and the keys derived from it
	kdf     byte
	logN    byte // scrypt cost for a file this store creates
	r, p    byte
	lim     seal.Limits
	rand    io.Reader
	// keyNote says where the key lives, for String, when not with the caller.
	keyNote string
}

// keys returns the subkeys for a file's KDF parameters and salt. The
// deriver derives once per process for one salt (the salt is kept across
// writes), and for a passphrase first looks in the session cache; check is
// the file's key check, nil for a new file.
func (s *fileStore) keys(id kdfID, check []byte) (*fileKeys, error) {
	if id.kdf != s.kdf {
		if id.kdf == kdfRawKey {
			return nil, fmt.Errorf("%w: the file is encrypted with a raw key, not a passphrase", ErrWrongKey)
		}
		return nil, fmt.Errorf("%w: the file is encrypted with a passphrase, not a raw key", ErrWrongKey)
	}
	k, err := s.deriver.Keys(seal.Params{KDF: id.kdf, LogN: id.logN, R: id.r, P: id.p, Salt: id.salt}, check)
	if err != nil {
		return nil, err
	}
	return &fileKeys{payload: k.Payload, check: k.Check}, nil
}

// read reads and decrypts the file. A missing file gives a nil header and
// an empty map. Errors name the file.
//
// Whatever is at the path is opened without blocking (a FIFO would wait for
// a writer forever) and must be a regular file; its size is known before
// reading, and its header is checked before the rest is read, so a wrong
// kind of file costs a few syscalls, not 64 MiB of reading.
func (s *fileStore) read(ctx context.Context) (*fileHeader, map[string][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	f, err := os.OpenFile(s.path, os.O_RDONLY|openNonblock, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, make(map[string][]byte), nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("store: encrypted file %s: %w: not a regular file (%s)", s.name, ErrFormat, secretfile.Kind(fi.Mode()))
	}
	if err := checkFileMode(s.name, s.path, fi); err != nil {
		return nil, nil, err
	}
	if fi.Size() > maxFileSize {
		return nil, nil, fmt.Errorf("store: encrypted file %s: %w: larger than %d MiB", s.name, ErrTooLarge, maxFileSize>>20)
	}
	// The size may change under us (a writer renames, never writes in
	// place, but someone else might): read at most maxFileSize+1 bytes.
	data := make([]byte, 0, min(fi.Size(), maxFileSize)+1)
	head := data[:min(int64(headerSize), fi.Size())]
	n, err := io.ReadFull(f, head)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	if _, err := parseHeader(head[:n], max(fi.Size(), int64(n)), s.lim); err != nil {
		return nil, nil, fmt.Errorf("store: encrypted file %s: %w", s.name, err)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	rest, err := io.ReadAll(io.LimitReader(f, maxFileSize+1-int64(n)))
	if err != nil {
		return nil, nil, fmt.Errorf("store: %w", err)
	}
	data = append(head[:n], rest...)
	if len(data) > maxFileSize {
		return nil, nil, fmt.Errorf("store: encrypted file %s: %w: larger than %d MiB", s.name, ErrTooLarge, maxFileSize>>20)
	}
	h, entries, err := decodeFile(data, s.lim, s.keys)
	if err != nil {
		return nil, nil, fmt.Errorf("store: encrypted file %s: %w", s.name, err)
	}
	return h, entries, nil
}

// resolveLinks follows symbolic links in path, including a last one whose
// target does not exist yet, so that the store reads, renames over and
// locks beside the real file: renaming over a link would replace the link.
func resolveLinks(path string) (string, error) {
	for range 40 {
		fi, err := os.Lstat(path)
		if errors.Is(err, fs.ErrNotExist) {
			break
		}
		if err != nil {
			return "", err
		}
		if fi.Mode().Type() != fs.ModeSymlink {
			break
		}
		target, err := os.Readlink(path)
		if err != nil {
			return "", err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(path), target)
		}
		path = filepath.Clean(target)
	}
	// Then the directories: a missing one is created by the first Save.
	dir, base := filepath.Split(path)
	real, err := filepath.EvalSymlinks(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return path, nil
	}
	if err != nil {
		return "", err
	}
	return filepath.Join(real, base), nil
}

// Load returns the value saved under key.
func (s *fileStore) Load(ctx context.Context, key string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	_, entries, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	v, ok := entries[key]
	if !ok {
		return nil, fmt.Errorf("store: %s: key %q: %w", s, key, ErrNotFound)
	}
	return v, nil
}

// Keys lists the names of the credentials in the file, sorted; none when
// there is no file yet.
func (s *fileStore) Keys(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	_, entries, err := s.read(ctx)
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(entries)), nil
}

// Save stores data under key, rewriting the file atomically.
func (s *fileStore) Save(ctx context.Context, key string, data []byte) error {
	if err := checkKey(s, key); err != nil {
		return err
	}
	if len(data) > MaxValueSize {
		return fmt.Errorf("store: %s: key %q: %w: %d bytes, limit %d", s, key, ErrTooLarge, len(data), MaxValueSize)
	}
	v := append([]byte(nil), data...)
	return s.update(ctx, true, func(m map[string][]byte) bool {
		m[key] = v
		return true
	})
}

// Delete removes key; a missing key or file is not an error.
func (s *fileStore) Delete(ctx context.Context, key string) error {
	return s.update(ctx, false, func(m map[string][]byte) bool {
		if _, ok := m[key]; !ok {
			return false
		}
		delete(m, key)
		return true
	})
}

// update is the read-modify-write of the whole file under the writers' lock.
// change reports whether it modified the map; create says whether a missing
// file may be created.
func (s *fileStore) update(ctx context.Context, create bool, change func(map[string][]byte) bool) error {
	unlock, err := lockFile(ctx, s.path+".lock")
	if err != nil {
		return err
	}
	defer unlock()
	h, entries, err := s.read(ctx)
	if err != nil {
		return err // never replace a file we cannot read
	}
	var id kdfID
	if h != nil {
		id = h.id()
	} else {
		if !create {
			return nil
		}
		id = kdfID{kdf: s.kdf}
		if s.kdf == kdfScrypt {
			id.logN, id.r, id.p = s.logN, s.r, s.p
		}
		if _, err := io.ReadFull(s.rand, id.salt[:]); err != nil {
			return fmt.Errorf("store: reading random salt: %w", err)
		}
	}
	if !change(entries) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	var check []byte
	if h != nil {
		check = h.check[:]
	}
	fk, err := s.keys(id, check)
	if err != nil {
		return fmt.Errorf("store: encrypted file %s: %w", s.name, err)
	}
	data, err := encodeFile(id, fk, entries, s.rand)
	if err != nil {
		return fmt.Errorf("store: encrypted file %s: %w", s.name, err)
	}
	if len(data) > maxFileSize {
		return fmt.Errorf("store: encrypted file %s: %w: would grow past %d MiB", s.name, ErrTooLarge, maxFileSize>>20)
	}
	s.removeStaleTemps()
	if err := writeFileAtomic(s.path, data); err != nil {
		return fmt.Errorf("store: writing %s: %w", s.name, err)
	}
	return nil
}

// tempPrefix names the temporary files a write renames over the store.
func (s *fileStore) tempPrefix() string { return filepath.Base(s.path) + ".tmp-" }

// removeStaleTemps deletes temporary files left by a writer that died
// mid-write. It runs under the writers' lock, so no live writer owns one.
func (s *fileStore) removeStaleTemps() {
	dir := filepath.Dir(s.path)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), s.tempPrefix()) {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// writeFileAtomic replaces path with data so that a crash at any moment
// leaves either the old or the new file: write a temporary file in the same
// directory, fsync it, rename it over path, fsync the directory. A missing
// directory is created 0700; an existing one is left as it is.
func writeFileAtomic(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()
	// CreateTemp makes the file 0600, which the rename carries over.
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := renameRetry(tmp, path); err != nil {
		return err
	}
	return syncDir(dir)
}

// renameRetry renames, retrying briefly on Windows, where a reader that has
// the target open makes the rename fail with "access denied" for a moment.
func renameRetry(from, to string) error {
	err := os.Rename(from, to)
	for i := 0; err != nil && runtime.GOOS == "windows" && i < 50; i++ {
		time.Sleep(10 * time.Millisecond)
		err = os.Rename(from, to)
	}
	return err
}

// Lock takes the lock on one credential, shared by every process using this
// file: a lock file beside it named from a hash of key.
func (s *fileStore) Lock(ctx context.Context, key string) (func(), error) {
	return lockFile(ctx, s.lockPath(key))
}

// lockPath is the lock file of key.
func (s *fileStore) lockPath(key string) string { return s.path + "." + keyHash(key) + ".lock" }

// keyHash names a credential in lock file names without revealing it.
func keyHash(parts ...string) string {
	h := sha256.New()
	for i, p := range parts {
		if i > 0 {
			h.Write([]byte{0})
		}
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// String names the store by its file; it holds no secret.
func (s *fileStore) String() string { return "file(" + s.name + s.keyNote + ")" }

// FilePath returns the path of the encrypted file st keeps its credentials
// in, and whether st is such a store (as [NewEncryptedFile] and [Auto]'s
// fallback return). It is for tools that work on the file itself:
// "tokenmgr doctor" checks that its directory can be written, "tokenmgr
// logout --reset" deletes it.
func FilePath(st Store) (path string, ok bool) {
	if f, ok := st.(*fileStore); ok {
		return f.path, true
	}
	return "", false
}
