//go:build unix

package redisstore

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// The store through the topologies NewClient reads from a
// TOKENMGR_REDIS_URL, on real servers: a three-node Redis Cluster and a
// Sentinel watching a master.

// startCluster starts n redis-servers in cluster mode, splits the 16384
// slots between them and waits until every node reports the cluster ok.
func startCluster(t *testing.T, n int) []*redisServer {
	t.Helper()
	nodes := make([]*redisServer, n)
	for i := range nodes {
		nodes[i] = startRedis(t, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000")
	}
	ctx := context.Background()
	for i, nd := range nodes {
		c := redis.NewClient(&redis.Options{Addr: nd.Addr})
		lo, hi := i*16384/n, (i+1)*16384/n-1
		require.NoError(t, c.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", lo, hi).Err())
		if i > 0 {
			host, port, _ := net.SplitHostPort(nd.Addr)
			first := redis.NewClient(&redis.Options{Addr: nodes[0].Addr})
			require.NoError(t, first.ClusterMeet(ctx, host, port).Err())
			first.Close()
		}
		c.Close()
	}
	for _, nd := range nodes {
		c := redis.NewClient(&redis.Options{Addr: nd.Addr})
		waitWithin(t, time.Minute, func() bool { // the nodes' gossip takes its time
			info, err := c.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:"+strconv.Itoa(n))
		})
		c.Close()
	}
	return nodes
}

// startSentinel starts a redis-server in sentinel mode monitoring master
// under the name master, and waits until it knows the master's address.
func startSentinel(t *testing.T, master *redisServer, name string) string {
	t.Helper()
	needRedis(t)
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	host, mport, _ := net.SplitHostPort(master.Addr)
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil,
		"port %d\nbind 127.0.0.1\ndir %s\nsentinel monitor %s %s %s 1\n", port, dir, name, host, mport), 0o600))
	cmd := exec.Command("redis-server", conf, "--sentinel", "--loglevel", "warning")
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill(); <-exited })
	c := redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	waitFor(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		got, err := c.GetMasterAddrByName(ctx, name).Result()
		return err == nil && net.JoinHostPort(got[0], got[1]) == master.Addr
	})
	return addr
}

// shareOneToken runs the store's whole contract over two clients made by
// NewClient from url, as two replicas would: a token saved by one is
// loaded by the other, the refresh lease excludes and its release wakes
// the waiter, and two tokenmgr Clients make one token request between
// them.
// servers are the servers whose subscribers count (pub/sub messages reach
// every node of a cluster).
func shareOneToken(t *testing.T, url string, servers ...*redisServer) {
	t.Helper()
	ctx := context.Background()
	a, b := urlReplica(t, url), urlReplica(t, url)

	rec := tokenRecord(t, "at-1", "rt-1", time.Now().Add(time.Hour))
	require.NoError(t, a.Save(ctx, credName, rec))
	got, err := b.Load(ctx, credName)
	require.NoError(t, err)
	assert.Equal(t, rec, got, "b reads what a saved")

	unlock, err := a.Lock(ctx, credName)
	require.NoError(t, err)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = b.Lock(short, credName)
	cancel()
	require.ErrorIs(t, err, context.DeadlineExceeded, "the lease is a's")
	b.pollCap = time.Minute // only the release message can wake b before the test's deadline
	took := make(chan error, 1)
	go func() {
		u, err := b.Lock(ctx, credName)
		if err == nil {
			u()
		}
		took <- err
	}()
	// b subscribes before it waits; once it has, a's release must reach it.
	counters := make([]*redis.Client, len(servers))
	for i, srv := range servers {
		counters[i] = srv.Client(t)
	}
	waitFor(t, func() bool {
		var n int64
		for _, c := range counters {
			n += c.PubSubNumSub(ctx, b.channel(credName)).Val()[b.channel(credName)]
		}
		return n == 1
	})
	unlock()
	select {
	case err := <-took:
		require.NoError(t, err)
	case <-time.After(20 * time.Second):
		require.FailNow(t, "the release did not wake the waiter (polls are a minute apart)")
	}

	oneTokenRequest(t, "api", a, b)
}

// urlReplica is a replica's Store over its own client made by NewClient
// from url.
func urlReplica(t *testing.T, url string) *Store {
	t.Helper()
	rdb, err := NewClient(url)
	require.NoError(t, err)
	t.Cleanup(func() { rdb.Close() })
	return newStore(t, rdb, Options{Lease: time.Minute})
}

// oneTokenRequest gives each store a tokenmgr Client for the credential
// key against a fresh token endpoint: they use one token, and the
// endpoint is asked once.
func oneTokenRequest(t *testing.T, key string, stores ...*Store) {
	t.Helper()
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: time.Hour})
	defer srv.Close()
	cc := &clientcredentials.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, TokenURL: srv.TokenURL()}
	toks := map[string]bool{}
	for _, st := range stores {
		c, err := tokenmgr.New(tokenmgr.Config{Source: tokenmgr.ClientCredentials(cc), Store: st, Key: key})
		require.NoError(t, err)
		tok, err := c.Token(context.Background())
		require.NoError(t, err)
		toks[tok.AccessToken] = true
		require.NoError(t, c.Close())
	}
	assert.Len(t, toks, 1, "the replicas use one token")
	assert.EqualValues(t, 1, srv.TokenRequests.Load(), "one token request for the replicas")
}

func TestCluster(t *testing.T) {
	nodes := startCluster(t, 3)
	url := "redis://" + nodes[0].Addr + "?addr=" + nodes[1].Addr + "&addr=" + nodes[2].Addr
	rdb, err := NewClient(url)
	require.NoError(t, err)
	defer rdb.Close()
	require.IsType(t, &redis.ClusterClient{}, rdb)
	o := rdb.(*redis.ClusterClient).Options()
	assert.Equal(t, DefaultTimeout, o.ReadTimeout, "bounded as a single server is")
	assert.Equal(t, 1, o.DialerRetries)
	assert.True(t, o.ContextTimeoutEnabled)
	st := newStore(t, rdb, Options{})
	assert.Equal(t, fmt.Sprintf("Redis Cluster at %s, %s, %s (prefix %q)", nodes[0].Addr, nodes[1].Addr, nodes[2].Addr, DefaultPrefix), st.String())

	shareOneToken(t, url, nodes...)

	// TOKENMGR_STORE=redis with this URL opens the same store.
	env, err := openFromEnv(context.Background(), &envconfig.Env{RedisURL: url, StorePassphrase: []byte(testPass)})
	require.NoError(t, err)
	defer env.(*Store).Close()
	assert.Contains(t, env.(*Store).String(), "Redis Cluster at "+nodes[0].Addr)
	_, err = env.Load(context.Background(), credName)
	require.NoError(t, err, "reads what the replicas saved")

	// Credentials land on every node: the store routes each one's keys
	// (one hash slot per credential) to the node owning that slot.
	ctx := context.Background()
	for i := range 12 {
		require.NoError(t, st.Save(ctx, "credential-"+strconv.Itoa(i), tokenRecord(t, "at", "", time.Now().Add(time.Hour))))
	}
	for _, nd := range nodes {
		c := redis.NewClient(&redis.Options{Addr: nd.Addr})
		n, err := c.DBSize(ctx).Result()
		c.Close()
		require.NoError(t, err)
		assert.Positive(t, n, "node %s holds none of the keys", nd.Addr)
	}
}

func TestSentinel(t *testing.T) {
	master := startRedis(t)
	sentinel := startSentinel(t, master, "tokens")
	url := "redis://" + sentinel + "?master_name=tokens"
	rdb, err := NewClient(url)
	require.NoError(t, err)
	defer rdb.Close()
	st := newStore(t, rdb, Options{})
	assert.Equal(t, fmt.Sprintf("Redis via Sentinel (prefix %q)", DefaultPrefix), st.String())

	shareOneToken(t, url, master)

	env, err := openFromEnv(context.Background(), &envconfig.Env{RedisURL: url, StorePassphrase: []byte(testPass)})
	require.NoError(t, err)
	defer env.(*Store).Close()
	_, err = env.Load(context.Background(), credName)
	require.NoError(t, err, "TOKENMGR_STORE=redis with this URL reads what the replicas saved")

	// The values are on the master the sentinel named.
	keys, err := master.Client(t).Keys(context.Background(), DefaultPrefix+"*").Result()
	require.NoError(t, err)
	assert.Contains(t, keys, st.valueKey(credName))
}

func TestNewClientRejects(t *testing.T) {
	for url, want := range map[string]string{
		"unix:///tmp/r.sock?master_name=x":          "not unix://",
		"unix:///tmp/r.sock?addr=h:1":               "not unix://",
		"redis://h:26379?master_name=":              "master_name= is empty",
		"redis://u:s3cret@h?addr=bad&x=1":           "",
		"redis://h?master_name=m&password=s3cret&x": "",
		"redis://h?master_name=m&addr=nope":         "",
		"http://h?addr=h:2":                         "scheme",
	} {
		rdb, err := NewClient(url)
		require.Error(t, err, url)
		assert.Nil(t, rdb, "a true nil with the error: %s", url)
		assert.NotContains(t, err.Error(), "s3cret", url)
		assert.Contains(t, err.Error(), want, url)
	}
}

// A Sentinel failover under a running fleet: the store follows the
// master the sentinel promotes, with the same client, and a refresh after
// the failover still makes one token request for two replicas.
func TestSentinelFailover(t *testing.T) {
	master := startRedis(t)
	replica := startRedis(t, "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
	sentinel := startSentinel(t, master, "tokens")
	url := "redis://" + sentinel + "?master_name=tokens"
	ctx := context.Background()
	a, b := urlReplica(t, url), urlReplica(t, url)
	rec := tokenRecord(t, "at-1", "rt-1", time.Now().Add(time.Hour))
	require.NoError(t, a.Save(ctx, credName, rec))
	// The replica has everything before the master goes (WAIT: one
	// replica acknowledged every write so far).
	acked, err := master.Client(t).Wait(ctx, 1, 10*time.Second).Result()
	require.NoError(t, err)
	require.EqualValues(t, 1, acked)

	sc := redis.NewSentinelClient(&redis.Options{Addr: sentinel})
	defer sc.Close()
	waitWithin(t, time.Minute, func() bool { // the sentinel has found the replica
		rs, err := sc.Replicas(ctx, "tokens").Result()
		return err == nil && len(rs) == 1
	})
	require.NoError(t, sc.Failover(ctx, "tokens").Err())
	waitWithin(t, time.Minute, func() bool {
		got, err := sc.GetMasterAddrByName(ctx, "tokens").Result()
		return err == nil && net.JoinHostPort(got[0], got[1]) == replica.Addr
	})
	master.Kill() // the old master is gone for good: nothing can reach it

	var got []byte
	waitWithin(t, time.Minute, func() bool { // the clients learn of the new master
		got, err = b.Load(ctx, credName)
		return err == nil
	})
	assert.Equal(t, rec, got, "the promoted replica serves what was saved before the failover")
	rec2 := tokenRecord(t, "at-2", "rt-2", time.Now().Add(time.Hour))
	require.NoError(t, a.Save(ctx, credName, rec2), "writes go to the new master")
	got, err = replica.Client(t).Get(ctx, a.valueKey(credName)).Bytes()
	require.NoError(t, err)
	assert.NotEmpty(t, got)

	oneTokenRequest(t, "after-failover", a, b)
}
