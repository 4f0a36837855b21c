//go:build unix

package redisstore

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// redisServer is a real redis-server on a free loopback port, without
// persistence, owned by one test.
type redisServer struct {
	t      testing.TB
	port   int
	args   []string
	cmd    *exec.Cmd
	exited chan error // receives cmd.Wait's result once
	Addr   string
}

// startRedis starts a redis-server for t (extra arguments such as
// --requirepass go to it) and stops it when t ends.
func startRedis(t testing.TB, args ...string) *redisServer {
	t.Helper()
	r := &redisServer{t: t, args: args}
	needRedis(t)
	for try := 0; ; try++ {
		r.port = freePort(t)
		r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
		err := r.start()
		if err == nil {
			break
		}
		if try == 3 {
			require.NoError(t, err, "starting redis-server")
		}
	}
	t.Cleanup(r.Kill)
	return r
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs redis-server on r.port and waits until it answers PING.
func (r *redisServer) start() error {
	args := append([]string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.t.TempDir(), "--loglevel", "warning"}, r.args...)
	cmd := exec.Command("redis-server", args...)
	cmd.Stderr = os.Stderr // warnings go to stdout, discarded
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pass := ""
	for i, a := range r.args {
		if a == "--requirepass" {
			pass = r.args[i+1]
		}
	}
	c := redis.NewClient(&redis.Options{Addr: r.Addr, Password: pass, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			r.cmd, r.exited = cmd, exited
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("redis-server exited: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			<-exited
			return fmt.Errorf("redis-server on port %d did not answer within 10s", r.port)
		}
	}
}

// Kill stops the server with SIGKILL (no goodbye to clients) and waits
// for it to exit. It may be called more than once.
func (r *redisServer) Kill() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Kill()
	<-r.exited
	r.cmd = nil
}

// Restart starts the server again on the same port, empty.
func (r *redisServer) Restart() {
	r.t.Helper()
	r.Kill()
	require.NoError(r.t, r.start())
}

// Stop and Cont pause and resume the server: a Redis that accepts
// connections and never answers.
func (r *redisServer) Stop() { require.NoError(r.t, r.cmd.Process.Signal(syscall.SIGSTOP)) }
func (r *redisServer) Cont() { require.NoError(r.t, r.cmd.Process.Signal(syscall.SIGCONT)) }

// Client returns a go-redis client for the server, configured as
// ParseURL configures one, closed when the test ends.
func (r *redisServer) Client(t testing.TB) *redis.Client {
	t.Helper()
	opts, err := ParseURL("redis://" + r.Addr)
	require.NoError(t, err)
	c := redis.NewClient(opts)
	t.Cleanup(func() { c.Close() })
	return c
}

func needRedis(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("TOKENMGR_TEST_REDIS") == "1" {
			t.Fatal("TOKENMGR_TEST_REDIS=1 but redis-server is not installed (apt-get install redis-server)")
		}
		t.Skip("redis-server not installed (apt-get install redis-server)")
	}
}

// unstartedRedis reserves a free port for a redis-server that is not
// running yet: Restart starts it.
func unstartedRedis(t testing.TB) *redisServer {
	t.Helper()
	needRedis(t)
	r := &redisServer{t: t}
	r.port = freePort(t)
	r.Addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
	t.Cleanup(r.Kill)
	return r
}
