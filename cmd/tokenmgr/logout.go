package main

import (
	"context"
	"fmt"
	"io"

	"github.com/tokenmgr/tokenmgr"
)

var logoutCommand = &command{
	name:    "logout",
	summary: "delete the stored credential",
	help: `Deletes the credential (access token, refresh token, ID token) from the
store, so the next "tokenmgr token" asks the token endpoint afresh. It
does not revoke anything at the authorization server. Like status, it
works without the TOKEN_URL/CLIENT_ID/CLIENT_SECRET variables. It takes
the credential's lock first, so it does not race a refresh in progress.

Exit status: 0 when the credential is gone (or was never stored); 1 when
the store cannot be opened or written; 2 for a usage error.`,
	run: runLogout,
}

func runLogout(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	env, err := tokenmgr.ReadStoreEnv(o.lookup)
	if err != nil {
		return fail(stderr, "logout", err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	st, err := env.OpenStore(ctx)
	if err != nil {
		return fail(stderr, "logout", err)
	}
	if st == nil {
		fmt.Fprintln(stdout, "no store configured (a static TOKENMGR_ACCESS_TOKEN); nothing to delete")
		return exitOK
	}
	unlock, err := lockStore(ctx, st, env.Key)
	if err != nil {
		return fail(stderr, "logout", err)
	}
	defer unlock()
	_, lerr := st.Load(ctx, env.Key)
	if err := st.Delete(ctx, env.Key); err != nil {
		return fail(stderr, "logout", err)
	}
	if lerr == nil {
		fmt.Fprintf(stdout, "deleted credential %q from %s\n", env.Key, storeName(st))
	} else {
		fmt.Fprintf(stdout, "nothing stored for credential %q in %s\n", env.Key, storeName(st))
	}
	return exitOK
}
