//go:build unix

package redisstore

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// What a shared store costs and saves, against a local token endpoint and
// a local redis-server:
//
//	BenchmarkColdStart: a new replica's first token (store opened, Client
//	  made, Token): no store (the peer), Redis with a raw key, Redis with a
//	  passphrase (scrypt at the default cost, or the key cached), and Redis
//	  when another replica already holds the token (no token request).
//	BenchmarkRefresh: one refresh of a Client in service (Invalidate, then
//	  Token): no store, memory store, Redis (lease, load, save, release).
//	BenchmarkRequestsPerLifetime: N replicas (each its own Client, go-redis
//	  client and Store) over 3 token lifetimes; reports token requests per
//	  lifetime, with Redis and alone (each replica for itself).

func benchSource(srv *tokenmgrtest.Server) oauth2.TokenSource {
	return tokenmgr.ClientCredentials(&clientcredentials.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret,
		TokenURL: srv.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader})
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func BenchmarkColdStart(b *testing.B) {
	rs := startRedisB(b)
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	ctx := context.Background()
	key := bytes.Repeat([]byte{3}, 32)
	run := func(b *testing.B, open func(i int) store.Store, name func(i int) string) {
		for i := 0; b.Loop(); i++ {
			var st store.Store
			if open != nil {
				st = open(i)
			}
			c, err := tokenmgr.New(tokenmgr.Config{Source: benchSource(srv), Store: st, Key: name(i), Logger: quiet})
			require.NoError(b, err)
			_, err = c.Token(ctx)
			require.NoError(b, err)
			c.Close()
		}
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/start")
	}
	unique := func(i int) string { return fmt.Sprintf("cold-%d-%d", time.Now().UnixNano(), i) }
	redisStore := func(o Options) func(int) store.Store {
		return func(int) store.Store {
			s, err := New(ctx, rs.client(b), o)
			require.NoError(b, err)
			return s
		}
	}
	b.Run("store=none", func(b *testing.B) { run(b, nil, unique) })
	b.Run("store=redis-key", func(b *testing.B) { run(b, redisStore(Options{Key: key, Prefix: "k:", Logger: quiet}), unique) })
	b.Run("store=redis-passphrase-scrypt", func(b *testing.B) {
		// A new fleet each time (its own prefix: a new salt), so scrypt
		// runs at the default cost: the first start of a fleet.
		run(b, func(i int) store.Store {
			return redisStore(Options{Passphrase: []byte(testPass), Prefix: unique(i) + ":", KeyCacheTTL: -1, Logger: quiet})(i)
		}, unique)
	})
	b.Run("store=redis-passphrase-cached", func(b *testing.B) {
		// The fleet's header exists and the key is cached (in the process
		// here; in the session cache for a new process).
		run(b, redisStore(Options{Passphrase: []byte(testPass), Prefix: "p:", Logger: quiet}), unique)
	})
	b.Run("store=redis-key-token-shared", func(b *testing.B) {
		run(b, redisStore(Options{Key: key, Prefix: "k:", Logger: quiet}), func(int) string { return "shared" })
	})
}

func BenchmarkRefresh(b *testing.B) {
	rs := startRedisB(b)
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		st   func() store.Store
	}{
		{"store=none", func() store.Store { return nil }},
		{"store=memory", func() store.Store { return store.NewMemory() }},
		{"store=redis", func() store.Store {
			s, err := New(ctx, rs.client(b), Options{Key: bytes.Repeat([]byte{3}, 32), Logger: quiet})
			require.NoError(b, err)
			return s
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			c, err := tokenmgr.New(tokenmgr.Config{Source: benchSource(srv), Store: tc.st(), Key: "refresh-" + tc.name, Logger: quiet})
			require.NoError(b, err)
			defer c.Close()
			tok, err := c.Token(ctx)
			require.NoError(b, err)
			for b.Loop() {
				c.Invalidate(tok)
				tok, err = c.Token(ctx)
				require.NoError(b, err)
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/refresh")
		})
	}
}

func BenchmarkRequestsPerLifetime(b *testing.B) {
	rs := startRedisB(b)
	lifetime := time.Second
	const lifetimes = 3
	for _, shared := range []bool{true, false} {
		for _, n := range []int{1, 8, 32} {
			name := fmt.Sprintf("store=redis/replicas=%d", n)
			if !shared {
				name = fmt.Sprintf("store=none/replicas=%d", n)
			}
			b.Run(name, func(b *testing.B) {
				var total int64
				for i := 0; b.Loop(); i++ {
					srv := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: lifetime})
					cred := fmt.Sprintf("fleet-%d-%d", time.Now().UnixNano(), i)
					var wg sync.WaitGroup
					end := time.Now().Add(lifetimes * lifetime)
					for range n {
						var st store.Store
						if shared {
							s, err := New(context.Background(), rs.client(b), Options{Key: bytes.Repeat([]byte{3}, 32), Lease: 2 * time.Second, Logger: quiet})
							require.NoError(b, err)
							st = s
						}
						c, err := tokenmgr.New(tokenmgr.Config{Source: benchSource(srv), Store: st, Key: cred, Logger: quiet})
						require.NoError(b, err)
						wg.Go(func() {
							defer c.Close()
							for time.Now().Before(end) {
								if _, err := c.Token(context.Background()); !assert.NoError(b, err) {
									return
								}
								time.Sleep(5 * time.Millisecond)
							}
						})
					}
					wg.Wait()
					total += srv.TokenRequests.Load()
					srv.Close()
				}
				b.ReportMetric(float64(total)/float64(b.N)/lifetimes, "requests/lifetime")
			})
		}
	}
}

// benchRedis is a redis-server for a benchmark.
type benchRedis struct{ *redisServer }

// client returns a new client: a replica's own connections.
func (r benchRedis) client(b *testing.B) *redis.Client { return r.Client(b) }

func startRedisB(b *testing.B) benchRedis { return benchRedis{startRedis(b)} }
