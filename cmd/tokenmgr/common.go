package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/internal/record"
	"github.com/tokenmgr/tokenmgr/store"
)

// credentialVars are the variables that say how to get a token. status and
// logout only read the store, so they work without them.
var credentialVars = map[string]bool{
	"TOKENMGR_TOKEN_URL": true, "TOKENMGR_CLIENT_ID": true, "TOKENMGR_CLIENT_SECRET": true,
	"TOKENMGR_CLIENT_SECRET_FILE": true, "TOKENMGR_REFRESH_TOKEN": true, "TOKENMGR_ACCESS_TOKEN": true,
}

// readStoreEnv reads the variables for a command that only needs the
// store. When the full configuration is unusable for a credential
// variable (one not set, or a bad or conflicting one), it parses the store
// settings alone, without the credential variables. Any other bad value is
// an error.
func readStoreEnv(lookup func(string) (string, bool)) (*tokenmgr.Env, error) {
	env, err := tokenmgr.ReadEnv(lookup)
	if err == nil {
		return env, nil
	}
	var ee *tokenmgr.EnvError
	if !errors.As(err, &ee) || !credentialVars[ee.Var] {
		return nil, err
	}
	storeOnly := func(name string) (string, bool) {
		if credentialVars[name] {
			return "", false
		}
		return lookup(name)
	}
	env, err2 := tokenmgr.ParseEnv(storeOnly)
	if err2 != nil {
		return nil, err // the original complaint is the useful one
	}
	return env, nil
}

// loadRecord reads the credential from st. Nothing stored is (nil, nil).
func loadRecord(ctx context.Context, st store.Store, key string) (*record.Record, error) {
	return record.Load(ctx, st, key)
}

// storeName names a store without any secret.
func storeName(st store.Store) string {
	if st == nil {
		return "none"
	}
	if s, ok := st.(fmt.Stringer); ok {
		return s.String()
	}
	return fmt.Sprintf("%T", st)
}

// tokenType is the token type as it is sent ("bearer" becomes "Bearer").
func tokenType(t string) string {
	if t == "" || strings.EqualFold(t, "bearer") {
		return "Bearer"
	}
	return t
}

// relative says how far t is from now: "in 59m58s" or "3m2s ago".
func relative(t, now time.Time) string {
	d := t.Sub(now)
	if d >= 0 {
		return "in " + roundDuration(d)
	}
	return roundDuration(-d) + " ago"
}

// roundDuration drops sub-second noise, seconds beyond an hour and
// minutes beyond a day: "1.5s", "59m58s", "1h", "2h5m", "3d4h".
func roundDuration(d time.Duration) string {
	switch {
	case d >= 24*time.Hour-30*time.Minute:
		r := d.Round(time.Hour)
		days, h := r/(24*time.Hour), (r%(24*time.Hour))/time.Hour
		if h == 0 {
			return fmt.Sprintf("%dd", days)
		}
		return fmt.Sprintf("%dd%dh", days, h)
	case d >= time.Hour-30*time.Second:
		r := d.Round(time.Minute)
		h, m := r/time.Hour, (r%time.Hour)/time.Minute
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	case d >= time.Second:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Millisecond).String()
}

// stamp formats a time for humans: UTC, RFC 3339, to the second.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// lockStore takes the credential's lock when st has one.
func lockStore(ctx context.Context, st store.Store, key string) (func(), error) {
	if l, ok := st.(store.Locker); ok {
		return l.Lock(ctx, key)
	}
	return func() {}, nil
}
