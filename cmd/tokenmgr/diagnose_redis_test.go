package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/diagnose"
	"github.com/tokenmgr/tokenmgr/store/redisstore"
)

// redisClients returns how many clients are connected to the Redis at
// addr, this one included.
func redisClients(t *testing.T, addr string) int {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	require.NoError(t, err)
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = c.Write([]byte("CLIENT LIST\r\n"))
	require.NoError(t, err)
	br := bufio.NewReader(c)
	head, err := br.ReadString('\n')
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(head, "$"), "reply %q", head)
	n, err := strconv.Atoi(strings.TrimSpace(head[1:]))
	require.NoError(t, err)
	body := make([]byte, n+2)
	_, err = io.ReadFull(br, body)
	require.NoError(t, err)
	return strings.Count(strings.TrimSpace(string(body)), "\n") + 1
}

// diagnose.Run closes the Redis store it opened from the environment: a
// program running it again and again (a health endpoint) does not leave a
// connection pool behind each time.
func TestDiagnoseClosesTheRedisStoreItOpens(t *testing.T) {
	addr := startRedis(t)
	// The header record first, at a low scrypt cost, as the other tests'
	// stores are made: diagnose.Run derives the key with the header's
	// parameters, and at the default cost (2^15) the race detector on a
	// loaded 2-core machine took longer than the Timeout below, which
	// this test is not about (it failed "store: context deadline exceeded").
	opts, err := redisstore.ParseURL("redis://" + addr + "/0")
	require.NoError(t, err)
	rdb := redis.NewClient(opts)
	_, err = redisstore.New(context.Background(), rdb, redisstore.Options{Passphrase: []byte(passphrase), ScryptLogN: 10})
	require.NoError(t, err)
	require.NoError(t, rdb.Close())
	env := map[string]string{
		"TOKENMGR_ACCESS_TOKEN": "static-token-value", "TOKENMGR_STORE": "redis",
		"TOKENMGR_REDIS_URL": "redis://" + addr + "/0", "TOKENMGR_STORE_PASSPHRASE": passphrase,
	}
	lookup := func(n string) (string, bool) { v, ok := env[n]; return v, ok }
	for range 3 {
		rep := diagnose.Run(context.Background(), diagnose.Options{Lookup: lookup, Offline: true, Timeout: 5 * time.Second})
		var store diagnose.Check
		for _, c := range rep.Checks {
			if c.Name == "store" {
				store = c
			}
		}
		require.Equal(t, diagnose.OK, store.Status, "%v", rep.Checks)
		require.Contains(t, store.Message, "Redis at "+addr)
	}
	require.Equal(t, 1, redisClients(t, addr), "connections diagnose.Run left open")
}
