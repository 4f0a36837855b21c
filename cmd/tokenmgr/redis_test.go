package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// startRedis runs a redis-server without persistence on a free loopback
// port for the test and returns its address.
func startRedis(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Skip("redis-server not installed (apt-get install redis-server)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			c.Write([]byte("PING\r\n"))
			reply, _ := bufio.NewReader(c).ReadString('\n')
			c.Close()
			if strings.HasPrefix(reply, "+PONG") {
				return addr
			}
		}
		require.True(t, time.Now().Before(deadline), "redis-server did not answer within 10s")
		time.Sleep(20 * time.Millisecond)
	}
}

// The command with TOKENMGR_STORE=redis: two runs share one token, status
// reads it, logout deletes it for every replica.
func TestRedisStoreFromTheEnvironment(t *testing.T) {
	addr := startRedis(t)
	srv, sec := oauthServer(t, tokenmgrtest.Options{})
	sec.add(passphrase, "redis-PASSWORD")
	env := oauthVars(srv).with("TOKENMGR_STORE", "redis", "TOKENMGR_REDIS_URL", "redis://"+addr+"/3",
		"TOKENMGR_STORE_PASSPHRASE", passphrase, "TOKENMGR_KEY", "billing")

	first := exe(t, sec, env, "token")
	wantCode(t, first, 0)
	second := exe(t, sec, env, "token")
	wantCode(t, second, 0)
	assert.Equal(t, first.stdout, second.stdout, "the second replica took the stored token")
	assert.EqualValues(t, 1, srv.TokenRequests.Load())

	st := exe(t, sec, env, "status")
	wantCode(t, st, 0)
	assert.Contains(t, st.stdout, "Redis at "+addr)

	out := exe(t, sec, env, "logout")
	wantCode(t, out, 0)
	assert.Contains(t, out.stdout, `deleted credential "billing" from Redis at `+addr)
	third := exe(t, sec, env, "token")
	wantCode(t, third, 0)
	assert.NotEqual(t, first.stdout, third.stdout)
	assert.EqualValues(t, 2, srv.TokenRequests.Load(), "deleted for the fleet: the next run asked afresh")

	noPass := exe(t, sec, env.without("TOKENMGR_STORE_PASSPHRASE"), "token")
	assert.NotZero(t, noPass.code)
	assert.Contains(t, noPass.stderr, "TOKENMGR_STORE_PASSPHRASE")

	badURL := exe(t, sec, env.with("TOKENMGR_REDIS_URL", "redis://u:redis-PASSWORD@"+addr+"/notadb"), "token")
	assert.NotZero(t, badURL.code)
	assert.Contains(t, badURL.stderr, "TOKENMGR_REDIS_URL")
}

// A Redis that does not answer is not a token outage (store.ErrUnavailable:
// each replica fetches its own token meanwhile): "token" prints the token,
// with a warning naming Redis, where a store that cannot be used at all
// (keyring without a Secret Service, a wrong passphrase) is an error.
func TestRedisDownTokenStillPrinted(t *testing.T) {
	srv, sec := oauthServer(t, tokenmgrtest.Options{})
	env := oauthVars(srv).with("TOKENMGR_STORE", "redis", "TOKENMGR_REDIS_URL", "redis://"+closedPort(t)+"/0",
		"TOKENMGR_STORE_PASSPHRASE", passphrase)
	r := exe(t, sec, env, "token")
	wantCode(t, r, 0)
	assert.Regexp(t, `^at-[0-9a-f]{32}\n$`, r.stdout)
	assert.Contains(t, r.stderr, "warning")
	assert.Contains(t, r.stderr, "Redis")
	assert.EqualValues(t, 1, srv.TokenRequests.Load())
}

// logout of a credential whose value in Redis does not open (damaged, or
// written with another key) deletes it and says so, naming why it could
// not be read, rather than "nothing stored".
func TestLogoutUnreadableRedisValueSaysDeleted(t *testing.T) {
	addr := startRedis(t)
	sec := &secrets{}
	env := vars{"TOKENMGR_STORE": "redis", "TOKENMGR_REDIS_URL": "redis://" + addr + "/0", "TOKENMGR_STORE_PASSPHRASE": passphrase}
	wantCode(t, exe(t, sec, env, "status"), 1) // creates the header record; nothing held
	sum := sha256.Sum256([]byte("default"))
	key := "tokenmgr:{" + hex.EncodeToString(sum[:16]) + "}:value"
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	defer c.Close()
	val := "not a tokenmgr value"
	_, err = fmt.Fprintf(c, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", len(key), key, len(val), val)
	require.NoError(t, err)
	reply, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "+OK\r\n", reply)

	r := exe(t, sec, env, "logout")
	wantCode(t, r, 0)
	assert.NotContains(t, r.stdout, "nothing stored")
	assert.Contains(t, r.stdout, `deleted credential "default"`)
	assert.Contains(t, r.stdout, "could not be read")
	r = exe(t, sec, env, "logout")
	wantCode(t, r, 0)
	assert.Contains(t, r.stdout, "nothing stored")
}

// A value in Redis that is not tokenmgr's gets a hint about Redis: before,
// it got the file store's ("set TOKENMGR_STORE_PATH to another file").
func TestGarbageRedisValueGetsARedisHint(t *testing.T) {
	addr := startRedis(t)
	srv, sec := oauthServer(t, tokenmgrtest.Options{})
	sec.add(passphrase)
	env := oauthVars(srv).with("TOKENMGR_STORE", "redis", "TOKENMGR_REDIS_URL", "redis://"+addr+"/0", "TOKENMGR_STORE_PASSPHRASE", passphrase)
	wantCode(t, exe(t, sec, env, "token"), 0)
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	defer rdb.Close()
	keys, err := rdb.Keys(t.Context(), "*:value").Result()
	require.NoError(t, err)
	require.Len(t, keys, 1)
	require.NoError(t, rdb.Set(t.Context(), keys[0], "not a tokenmgr value", 0).Err())

	for _, cmd := range []string{"status", "doctor"} {
		r := exe(t, sec, env, cmd)
		wantCode(t, r, 1)
		out := r.stdout + r.stderr
		assert.Contains(t, out, "the value in Redis is not a tokenmgr value", cmd)
		assert.NotContains(t, out, "TOKENMGR_STORE_PATH", cmd)
	}
}

// A Redis user whose ACL allows reads but not the scripts a save runs
// (EVAL, EVALSHA) fails doctor's store check, saying what to grant: before,
// doctor read the store and said OK while every save failed.
func TestDoctorRedisUserWithoutEval(t *testing.T) {
	addr := startRedis(t)
	srv, sec := oauthServer(t, tokenmgrtest.Options{})
	sec.add(passphrase, "app-PASSWORD")
	admin := redis.NewClient(&redis.Options{Addr: addr})
	defer admin.Close()
	require.NoError(t, admin.Do(t.Context(), "ACL", "SETUSER", "app", "on", ">app-PASSWORD", "~*", "&*", "+@all", "-@scripting").Err())
	env := oauthVars(srv).with("TOKENMGR_STORE", "redis", "TOKENMGR_REDIS_URL", "redis://app:app-PASSWORD@"+addr+"/0", "TOKENMGR_STORE_PASSPHRASE", passphrase)

	r := exe(t, sec, env, "doctor")
	wantCode(t, r, 1)
	wantCheck(t, r, "store", "FAIL", "NOPERM", "+@scripting")
}
