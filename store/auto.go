package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// autoProbeTimeout bounds how long Auto waits for the keyring to answer: a
// Secret Service that wants to show an unlock prompt nobody will see would
// otherwise hang the program.
var autoProbeTimeout = 3 * time.Second

// probeUser is the account Auto reads to see whether the keyring answers.
// It is never written; "not found" means the keyring works.
const probeUser = "tokenmgr-keyring-probe"

// Auto picks the OS keyring when one answers within a few seconds, else the
// encrypted file at path (DefaultFilePath when path is empty) with
// passphrase. With neither a keyring nor a passphrase it returns an error
// wrapping ErrKeyringUnavailable that names both ways out; it never falls
// back to storing credentials in plain text. opts are the encrypted
// file's options ([FileOptions]: a file it creates, its key cache) when
// it falls back to the file.
func Auto(ctx context.Context, service, path string, passphrase []byte, opts ...FileOptions) (Store, error) {
	var o FileOptions
	if len(opts) > 0 {
		o = opts[len(opts)-1]
	}
	return autoWithOptions(ctx, osKeyring{}, service, path, passphrase, o)
}

func autoWith(ctx context.Context, kr keyringBackend, service, path string, passphrase []byte) (Store, error) {
	return autoWithOptions(ctx, kr, service, path, passphrase, FileOptions{})
}

func autoWithOptions(ctx context.Context, kr keyringBackend, service, path string, passphrase []byte, opts FileOptions) (Store, error) {
	ks := &keyringStore{service: service, kr: kr}
	if _, ok := kr.(osKeyring); ok {
		ks.chunk = osChunkSize
	}
	err := probeKeyring(ctx, ks)
	if err == nil {
		return ks, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if len(passphrase) > 0 {
		if path == "" {
			if path, err = DefaultFilePath(); err != nil {
				return nil, err
			}
		}
		return NewEncryptedFile(path, passphrase, opts)
	}
	cause := err
	var ke *keyringError
	if errors.As(err, &ke) {
		cause = ke.cause
	}
	return nil, fmt.Errorf("store: no credential store: %w (%v); start a Secret Service (e.g. gnome-keyring-daemon under dbus-run-session), or set TOKENMGR_STORE_PASSPHRASE or TOKENMGR_STORE_PASSPHRASE_FILE to use an encrypted file",
		ErrKeyringUnavailable, cause)
}

// probeKeyring reads a probe entry, waiting at most autoProbeTimeout.
func probeKeyring(ctx context.Context, ks *keyringStore) error {
	pctx, cancel := context.WithTimeout(ctx, autoProbeTimeout)
	defer cancel()
	_, err := ks.get(pctx, probeUser)
	switch {
	case err == nil, errors.Is(err, ErrNotFound):
		return nil
	case ctx.Err() == nil && pctx.Err() != nil:
		return &keyringError{store: ks.String(), cause: fmt.Errorf("no answer within %v", autoProbeTimeout)}
	default:
		return err
	}
}
