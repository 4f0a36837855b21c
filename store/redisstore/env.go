package redisstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/store"
)

func init() { envconfig.RegisterStore("redis", openFromEnv) }

// ParseURL parses a TOKENMGR_REDIS_URL naming a single server:
// redis://[user:password@]host[:port][/db] or rediss://… for TLS (or
// unix:///path), with go-redis's query options (redis.ParseURL). Timeouts
// the URL does not set are bounded for a store that must not hold a
// program up: 1s to dial, read and write and to wait for a pooled
// connection, context deadlines honoured, no retries and one dial attempt
// (the Store retries on its own schedule). Errors never contain the URL,
// which may hold a password. [NewClient] also takes Sentinel and Cluster
// URLs.
func ParseURL(s string) (*redis.Options, error) {
	u, err := parseScheme(s, "redis", "rediss", "unix")
	if err != nil {
		return nil, err
	}
	opts, err := redis.ParseURL(s)
	if err != nil {
		return nil, redisURLError(u, err)
	}
	bound(&opts.DialTimeout, &opts.ReadTimeout, &opts.WriteTimeout, &opts.PoolTimeout, &opts.MaxRetries, &opts.DialerRetries)
	opts.ContextTimeoutEnabled = true
	return opts, nil
}

// NewClient returns a go-redis client for a TOKENMGR_REDIS_URL, the one
// TOKENMGR_STORE=redis uses. The URL's query says which topology it is,
// as go-redis's UniversalOptions do:
//
//   - master_name=<name>: Sentinel. The URL names a sentinel, addr=host:port
//     more of them; user and password in the URL are the sentinels', the
//     master's are username= and password= (redis.ParseFailoverURL).
//     Example: redis://sentinel-1:26379?master_name=tokens&addr=sentinel-2:26379&password=pw
//   - otherwise addr=host:port: Cluster. The URL names one node, each addr
//     another (redis.ParseClusterURL). Example:
//     rediss://app:pw@node-1:6379?addr=node-2:6379&addr=node-3:6379
//   - otherwise a single server ([ParseURL]).
//
// Every topology gets [ParseURL]'s bounded timeouts. A cluster behind a
// single configuration endpoint (IsClusterMode) is reached from Go: pass
// the client to [New]. Errors never contain the URL.
func NewClient(s string) (redis.UniversalClient, error) {
	u, err := parseScheme(s, "redis", "rediss", "unix")
	if err != nil {
		return nil, err
	}
	q := u.Query()
	switch {
	case q.Has("master_name"):
		if u.Scheme == "unix" {
			return nil, errors.New("a Sentinel URL (master_name=) is redis:// or rediss://, not unix://")
		}
		o, err := redis.ParseFailoverURL(s)
		if err != nil {
			return nil, redisURLError(u, err)
		}
		if o.MasterName == "" {
			return nil, errors.New("master_name= is empty: name the master the sentinels monitor")
		}
		bound(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries, &o.DialerRetries)
		o.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(o), nil
	case q.Has("addr"):
		if u.Scheme == "unix" {
			return nil, errors.New("a Cluster URL (addr=) is redis:// or rediss://, not unix://")
		}
		o, err := redis.ParseClusterURL(s)
		if err != nil {
			return nil, redisURLError(u, err)
		}
		if o.TLSConfig != nil {
			o.TLSConfig.MinVersion = tls.VersionTLS12
		}
		bound(&o.DialTimeout, &o.ReadTimeout, &o.WriteTimeout, &o.PoolTimeout, &o.MaxRetries, &o.DialerRetries)
		o.ContextTimeoutEnabled = true
		return redis.NewClusterClient(o), nil
	}
	o, err := ParseURL(s)
	if err != nil {
		return nil, err
	}
	return redis.NewClient(o), nil
}

// parseScheme parses s as a URL with one of schemes.
func parseScheme(s string, schemes ...string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, errors.New("not a URL")
	}
	if !slices.Contains(schemes, u.Scheme) {
		return nil, fmt.Errorf("scheme %q is not redis, rediss or unix", display.Cut(u.Scheme, 20))
	}
	return u, nil
}

// redisURLError is go-redis's complaint about u, with every password u
// carries (its user information, a password= option) masked.
func redisURLError(u *url.URL, err error) error {
	msg := strings.TrimPrefix(err.Error(), "redis: ")
	secrets := u.Query()["password"]
	if p, ok := u.User.Password(); ok {
		secrets = append(secrets, p)
	}
	for _, p := range secrets {
		if p != "" {
			msg = strings.ReplaceAll(msg, p, "xxxxx")
		}
	}
	return errors.New(display.Cut(msg, 200))
}

// bound gives the timeouts a URL left unset their store defaults: 1s, no
// command retries (-1), one dial attempt.
func bound(dial, read, write, pool *time.Duration, retries, dials *int) {
	for _, d := range []*time.Duration{dial, read, write, pool} {
		if *d == 0 {
			*d = DefaultTimeout
		}
	}
	if *retries == 0 {
		*retries = -1
	}
	if *dials == 0 {
		*dials = 1
	}
}

// openFromEnv opens the store for TOKENMGR_STORE=redis.
func openFromEnv(ctx context.Context, e *envconfig.Env) (store.Store, error) {
	if e.RedisURL == "" {
		return nil, &envconfig.Error{Var: "TOKENMGR_REDIS_URL", Problem: "not set (TOKENMGR_STORE=redis needs it, e.g. rediss://user:password@redis.internal:6380/0)"}
	}
	rdb, err := NewClient(e.RedisURL)
	if err != nil {
		return nil, &envconfig.Error{Var: "TOKENMGR_REDIS_URL", Problem: err.Error()}
	}
	if len(e.StorePassphrase) == 0 {
		rdb.Close()
		return nil, &envconfig.Error{Var: "TOKENMGR_STORE_PASSPHRASE",
			Problem: "not set (TOKENMGR_STORE=redis encrypts tokens before they reach Redis and needs it, or its _FILE form, the same on every replica)"}
	}
	s, err := New(ctx, rdb, Options{Passphrase: e.StorePassphrase, KeyCacheTTL: e.FileOptions().KeyCacheTTL, Logger: slog.Default()})
	if err != nil {
		rdb.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}
