package diagnose

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
)

func (d *diagnosis) checkStore(ctx context.Context) {
	const name = "store"
	if d.storeEnv == nil {
		d.add(name, Skip, "the configuration does not say which store", "")
		return
	}
	sctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	// The passphrase itself is checked: a key in the session cache would
	// open the file whatever passphrase is set (see package store).
	se := *d.storeEnv
	se.KeyCacheOff = true
	st, err := se.OpenStore(sctx)
	if err != nil {
		d.add(name, Fail, trimTM(err.Error()), Hint(err))
		return
	}
	if st == nil {
		d.add(name, Skip, "none: a static token is not stored", "")
		return
	}
	d.opened = st
	sname := display.StoreName(st)
	if p, ok := store.FilePath(st); ok {
		if err := dirWritable(filepath.Dir(p)); err != nil {
			d.add(name, Fail, fmt.Sprintf("%s: nothing can be saved: %v", sname, err),
				"set TOKENMGR_STORE_PATH to a file in a directory this user can create and write")
			return
		}
	}
	d.st = st
	rec, err := record.Load(sctx, st, d.storeEnv.Key)
	if err != nil {
		d.add(name, Fail, sname+": "+err.Error(), Hint(err))
		return
	}
	if _, isFile := store.FilePath(st); !isFile {
		// A file's directory was checked above; another store must show
		// it can save, not only read (a Redis user without EVAL).
		if err := probeSave(sctx, st); err != nil {
			d.add(name, Fail, fmt.Sprintf("%s: reads, but nothing can be saved: %v", sname, err), Hint(err))
			return
		}
	}
	if rec == nil {
		d.add(name, OK, fmt.Sprintf("%s: nothing stored for %q yet; the next token request fills it", sname, d.storeEnv.Key), "")
		return
	}
	d.addSecret(rec.AccessToken, rec.RefreshToken, rec.IDToken)
	d.stored = rec
	if !d.ours(rec) {
		// The Client fails with ErrKeyInUse rather than replace it.
		d.add(name, Fail, fmt.Sprintf("%s holds %q: %s of another configuration (%s): this one's tokens cannot be saved there",
			sname, d.storeEnv.Key, rec.Kind(), rec.Configuration()), keyInUseHint)
		return
	}
	now := time.Now()
	var parts []string
	switch {
	case rec.AccessToken == "":
		parts = append(parts, "no access token")
	case rec.Expiry.IsZero():
		parts = append(parts, "an access token with no expiry")
	case rec.Expiry.After(now):
		parts = append(parts, "an access token expiring "+display.Relative(rec.Expiry, now))
	default:
		parts = append(parts, "an access token that expired "+display.Relative(rec.Expiry, now)+" (the next token request replaces it)")
	}
	if rec.RefreshToken != "" {
		parts = append(parts, "a refresh token")
	}
	d.add(name, OK, fmt.Sprintf("%s holds %q: %s", sname, d.storeEnv.Key, strings.Join(parts, " and ")), "")
}

// closeStore closes the store checkStore opened, when it has a Close
// method (a Redis store opened from the environment owns its connections).
func (d *diagnosis) closeStore() {
	if c, ok := d.opened.(io.Closer); ok {
		_ = c.Close()
	}
}

// dirWritable reports why a file cannot be written in dir: dir, or the
// nearest of its parents that exists, is not a directory or cannot be
// written (a temporary file is created there and removed to find out, as
// an atomic write of the store would). Nothing is left behind.
func dirWritable(dir string) error {
	for d := filepath.Clean(dir); ; {
		fi, err := os.Stat(d)
		switch {
		case err == nil && !fi.IsDir():
			return fmt.Errorf("%s is not a directory", d)
		case err == nil:
			f, err := os.CreateTemp(d, ".tokenmgr-doctor-")
			if err != nil {
				var pe *os.PathError
				if errors.As(err, &pe) {
					err = pe.Err
				}
				if d == filepath.Clean(dir) {
					return fmt.Errorf("directory %s is not writable: %v", d, err)
				}
				return fmt.Errorf("directory %s cannot be created in %s: %v", dir, d, err)
			}
			f.Close()
			os.Remove(f.Name())
			return nil
		case !errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("directory %s: %v", d, err)
		}
		if fi, lerr := os.Lstat(d); lerr == nil && fi.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%s is a symbolic link to nowhere, so directory %s cannot be created", d, dir)
		}
		parent := filepath.Dir(d)
		if parent == d {
			return fmt.Errorf("directory %s: no parent exists", dir)
		}
		d = parent
	}
}

// probeName is the scratch credential probeSave writes and deletes.
const probeName = "tokenmgr-doctor-probe"

// probeSave saves and deletes a scratch credential as a refresh does,
// under the store's lock: the same commands (for Redis, the lease and save
// scripts), so a store that reads but cannot write fails here rather than
// at every refresh. The value is a record with no secret.
func probeSave(ctx context.Context, st store.Store) error {
	if l, ok := st.(store.Locker); ok {
		unlock, err := l.Lock(ctx, probeName)
		if err != nil {
			return fmt.Errorf("taking a lock: %w", err)
		}
		defer unlock()
	}
	v, err := (&record.Record{AccessToken: "doctor-probe", Expiry: time.Now().Add(time.Minute)}).Encode()
	if err != nil {
		return err
	}
	if err := st.Save(ctx, probeName, v); err != nil {
		return fmt.Errorf("saving: %w", err)
	}
	if err := st.Delete(ctx, probeName); err != nil {
		return fmt.Errorf("deleting: %w", err)
	}
	return nil
}

// probeStore lets the credentials check make a real token request with
// the stored refresh token: Load hides the stored access token (so the
// Client asks the endpoint), keeping the record's configuration
// fingerprint, and Save keeps only records whose refresh token is new (one
// the server rotated must not be lost); nothing else changes.
type probeStore struct {
	st   store.Store
	seed string // the configuration's own refresh token

	mu     sync.Mutex
	loaded string // the refresh token Load found
}

func (p *probeStore) Load(ctx context.Context, key string) ([]byte, error) {
	rec, err := record.Load(ctx, p.st, key)
	if err != nil {
		return nil, err
	}
	if rec == nil || rec.RefreshToken == "" {
		return nil, fmt.Errorf("probe: %w", store.ErrNotFound)
	}
	p.mu.Lock()
	p.loaded = rec.RefreshToken
	p.mu.Unlock()
	// Source stays: a refresh token another configuration stored must not
	// go to this one's token endpoint (the Client checks it).
	return (&record.Record{RefreshToken: rec.RefreshToken, Source: rec.Source}).Encode()
}

func (p *probeStore) Save(ctx context.Context, key string, data []byte) error {
	rec, err := record.Decode(data)
	if err != nil || rec.RefreshToken == "" || rec.RefreshToken == p.seed {
		return nil
	}
	p.mu.Lock()
	loaded := p.loaded
	p.mu.Unlock()
	if rec.RefreshToken == loaded {
		return nil // not rotated: what is stored stays
	}
	return p.st.Save(ctx, key, data)
}

func (p *probeStore) Delete(context.Context, string) error { return nil }

func (p *probeStore) Lock(ctx context.Context, key string) (func(), error) {
	if l, ok := p.st.(store.Locker); ok {
		return l.Lock(ctx, key)
	}
	return func() {}, nil
}
