package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/store"
)

var logoutCommand = &command{
	name:    "logout",
	summary: "delete the stored credential",
	help: `Deletes the credential (access token, refresh token, ID token) from the
store, so the next "tokenmgr token" asks the token endpoint afresh. It
does not revoke anything at the authorization server, except with
--revoke for a person's sign-in (TOKENMGR_ISSUER): the refresh token is
revoked at the issuer's revocation endpoint first, and not deleted when
that fails. Like status, it
works without the TOKEN_URL/CLIENT_ID/CLIENT_SECRET variables. It takes
the credential's lock first, so it does not race a refresh in progress,
and removes the credential's lock files.

With --reset and the encrypted file store (TOKENMGR_STORE=file, or auto
using the file), it deletes the whole store file instead, with every
credential in it, even when the file cannot be opened (a forgotten
passphrase, a damaged file): a way to start afresh. It says which file it
deleted. It refuses a file that is not a tokenmgr store. With another
store, --reset is plain logout.

Exit status: 0 when the credential (or the file) is gone, or was never
there; 1 when the store cannot be opened or written; 2 for a usage error.`,
	flags: func(fs *flag.FlagSet, o *options) {
		fs.BoolVar(&o.revoke, "revoke", false, "first revoke the signed-in refresh token at TOKENMGR_ISSUER (RFC 7009)")
		fs.BoolVar(&o.reset, "reset", false, "delete the whole encrypted store file, every credential in it, even one that cannot be opened")
	},
	run: runLogout,
}

func runLogout(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	env, err := envconfig.Read(o.lookup, envconfig.NeedStore)
	if err != nil {
		return fail(stderr, "logout", err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if o.revoke {
		if code := revoke(ctx, o, stdout, stderr); code != exitOK {
			return code
		}
	}
	st, err := env.OpenStore(ctx)
	_, isFile := store.FilePath(st)
	if o.reset && (env.Store == "file" || env.Store == "auto" && (err != nil || isFile)) {
		if err == nil || errors.Is(err, store.ErrDecrypt) {
			return resetFile(stdout, stderr, env)
		}
	}
	if err != nil {
		return failEnv(stderr, "logout", err, env)
	}
	if st == nil {
		fmt.Fprintln(stdout, "no store configured (a static TOKENMGR_ACCESS_TOKEN); nothing to delete")
		return exitOK
	}
	unlock, err := lockStore(ctx, st, env.Key)
	if err != nil {
		return failEnv(stderr, "logout", err, env)
	}
	defer unlock()
	_, lerr := st.Load(ctx, env.Key)
	if err := st.Delete(ctx, env.Key); err != nil {
		return failEnv(stderr, "logout", err, env)
	}
	// Then the credential's lock files, which would otherwise pile up, one
	// per key ever used: each removed under its own lock. Best effort.
	unlock()
	_ = store.RemoveLocks(ctx, st, env.Key)
	switch {
	case lerr == nil:
		fmt.Fprintf(stdout, "deleted credential %q from %s\n", env.Key, storeName(st))
	case !errors.Is(lerr, store.ErrNotFound):
		// Something was there that does not open (damaged, another key's).
		why := display.OneLine(env.Redactor().Redact(strings.TrimPrefix(lerr.Error(), "tokenmgr: ")))
		fmt.Fprintf(stdout, "deleted credential %q from %s; it could not be read: %s\n", env.Key, storeName(st), why)
	default:
		fmt.Fprintf(stdout, "nothing stored for credential %q in %s\n", env.Key, storeName(st))
	}
	return exitOK
}

// resetFile deletes the encrypted store file and says what went with it.
func resetFile(stdout, stderr io.Writer, env *envconfig.Env) int {
	path, err := env.StoreFilePath()
	if err != nil {
		return failEnv(stderr, "logout", err, env)
	}
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		fmt.Fprintf(stdout, "no store file at %s; nothing to delete\n", path)
		return exitOK
	case err != nil:
		return failEnv(stderr, "logout", err, env)
	case !fi.Mode().IsRegular():
		return fail(stderr, "logout", fmt.Errorf("--reset: %s is not a regular file; not deleting it", path))
	}
	if err := os.Remove(path); err != nil {
		return failEnv(stderr, "logout", err, env)
	}
	fmt.Fprintf(stdout, "deleted the store file %s (%d bytes) and every credential in it; the next \"tokenmgr token\" fetches afresh\n", path, fi.Size())
	return exitOK
}
