package redisstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/store"
)

func init() { tokenmgr.RegisterStore("redis", openFromEnv) }

// ParseURL parses a TOKENMGR_REDIS_URL: redis://[user:password@]host[:port][/db]
// or rediss://… for TLS (or unix:///path), with go-redis's query options
// (redis.ParseURL). Timeouts the URL does not set are bounded for a store
// that must not hold a program up: 1s to dial, read and write and to wait
// for a pooled connection, context deadlines honoured, no retries and one
// dial attempt (the Store retries on its own schedule). Errors never
// contain the URL, which may hold a password.
func ParseURL(s string) (*redis.Options, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	switch u.Scheme {
	case "redis", "rediss", "unix":
	default:
		return nil, fmt.Errorf("scheme %q is not redis, rediss or unix", cut(u.Scheme, 20))
	}
	opts, err := redis.ParseURL(s)
	if err != nil {
		msg := strings.TrimPrefix(err.Error(), "redis: ")
		if p, ok := u.User.Password(); ok && p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
		return nil, errors.New(cut(msg, 200))
	}
	if opts.DialTimeout == 0 {
		opts.DialTimeout = DefaultTimeout
	}
	if opts.ReadTimeout == 0 {
		opts.ReadTimeout = DefaultTimeout
	}
	if opts.WriteTimeout == 0 {
		opts.WriteTimeout = DefaultTimeout
	}
	if opts.PoolTimeout == 0 {
		opts.PoolTimeout = DefaultTimeout
	}
	if opts.MaxRetries == 0 {
		opts.MaxRetries = -1
	}
	if opts.DialerRetries == 0 {
		opts.DialerRetries = 1
	}
	opts.ContextTimeoutEnabled = true
	return opts, nil
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// openFromEnv opens the store for TOKENMGR_STORE=redis.
func openFromEnv(ctx context.Context, e *tokenmgr.Env) (store.Store, error) {
	if e.RedisURL == "" {
		return nil, &tokenmgr.EnvError{Var: "TOKENMGR_REDIS_URL", Problem: "not set (TOKENMGR_STORE=redis needs it, e.g. rediss://user:password@redis.internal:6380/0)"}
	}
	opts, err := ParseURL(e.RedisURL)
	if err != nil {
		return nil, &tokenmgr.EnvError{Var: "TOKENMGR_REDIS_URL", Problem: err.Error()}
	}
	if len(e.StorePassphrase) == 0 {
		return nil, &tokenmgr.EnvError{Var: "TOKENMGR_STORE_PASSPHRASE",
			Problem: "not set (TOKENMGR_STORE=redis encrypts tokens before they reach Redis and needs it, or its _FILE form, the same on every replica)"}
	}
	rdb := redis.NewClient(opts)
	s, err := New(ctx, rdb, Options{Passphrase: e.StorePassphrase, Logger: slog.Default()})
	if err != nil {
		rdb.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}
