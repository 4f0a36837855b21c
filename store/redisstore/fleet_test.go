//go:build unix

package redisstore

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/store/record"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// A fleet: real processes (this test binary re-run as a replica), each
// with its own tokenmgr Client and Redis connection, sharing one
// redis-server and one counting token endpoint.

const replicaEnv = "TOKENMGR_REDISSTORE_REPLICA"

func TestReplicaProcess(t *testing.T) {
	if os.Getenv(replicaEnv) == "" {
		t.Skip("a replica for the fleet tests; runs only when re-executed")
	}
	if err := replicaMain(); err != nil {
		fmt.Fprintln(os.Stderr, "replica:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// replicaMain reads commands on stdin, one a line, and answers each with
// one line on stdout:
//
//	token        → "token <sha256 prefix of the token>" or "error <message>"
//	load N D     → N goroutines call Token for duration D:
//	               "load <calls> <errors> <max latency ms> <distinct tokens>"
func replicaMain() error {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	opts, err := ParseURL("redis://" + os.Getenv("R_REDIS"))
	if err != nil {
		return err
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	lease, _ := time.ParseDuration(os.Getenv("R_LEASE"))
	ctx := context.Background()
	st, err := New(ctx, rdb, Options{Passphrase: []byte(testPass), ScryptLogN: 10, Lease: lease, Timeout: 300 * time.Millisecond, Logger: log})
	if err != nil {
		return err
	}
	c, err := tokenmgr.New(tokenmgr.Config{
		Source: tokenmgr.ClientCredentials(&clientcredentials.Config{ClientID: os.Getenv("R_ID"), ClientSecret: os.Getenv("R_SECRET"),
			TokenURL: os.Getenv("R_URL"), AuthStyle: oauth2.AuthStyleInHeader}),
		Store: st, Key: credName, Logger: log,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Println("ready")
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		f := strings.Fields(in.Text())
		switch {
		case len(f) == 1 && f[0] == "token":
			tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			tok, err := c.Token(tctx)
			cancel()
			if err != nil {
				fmt.Println("error", strings.ReplaceAll(err.Error(), "\n", " "))
				continue
			}
			fmt.Println("token", tokenHash(tok.AccessToken))
		case len(f) == 3 && f[0] == "load":
			n, _ := strconv.Atoi(f[1])
			d, _ := time.ParseDuration(f[2])
			fmt.Println(load(c, n, d))
		default:
			return fmt.Errorf("unknown command %q", in.Text())
		}
	}
	return in.Err()
}

// load runs n goroutines calling c.Token for d, each pausing 2ms between
// calls as a program doing work would.
func load(c *tokenmgr.Client, n int, d time.Duration) string {
	var calls, errs, maxLat atomic.Int64
	var mu sync.Mutex
	seen := map[string]bool{}
	end := time.Now().Add(d)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			for time.Now().Before(end) {
				start := time.Now()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				tok, err := c.Token(ctx)
				cancel()
				lat := time.Since(start).Milliseconds()
				for {
					m := maxLat.Load()
					if lat <= m || maxLat.CompareAndSwap(m, lat) {
						break
					}
				}
				calls.Add(1)
				if err != nil {
					if errs.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, "load: Token failed:", err)
					}
				} else {
					h := tokenHash(tok.AccessToken)
					mu.Lock()
					seen[h] = true
					mu.Unlock()
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	return fmt.Sprintf("load %d %d %d %d", calls.Load(), errs.Load(), maxLat.Load(), len(seen))
}

func tokenHash(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:8])
}

// replica is one running replica process.
type replica struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan string
	stderr *logBuf
}

// fleet is a redis-server, a token endpoint and the replicas' settings.
type fleet struct {
	t     *testing.T
	redis *redisServer
	srv   *tokenmgrtest.Server
	lease time.Duration
}

func newFleet(t *testing.T, lifetime, lease time.Duration) *fleet {
	t.Helper()
	if testing.Short() {
		t.Skip("starts many processes")
	}
	f := &fleet{t: t, redis: startRedis(t), srv: tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: lifetime}), lease: lease}
	t.Cleanup(f.srv.Close)
	return f
}

// start starts n replicas and waits until every one is ready.
func (f *fleet) start(n int) []*replica {
	f.t.Helper()
	rs := make([]*replica, n)
	for i := range rs {
		cmd := exec.Command(os.Args[0], "-test.run=^TestReplicaProcess$")
		cmd.Env = append(os.Environ(), replicaEnv+"=1", "R_REDIS="+f.redis.Addr, "R_URL="+f.srv.TokenURL(),
			"R_ID="+f.srv.ClientID, "R_SECRET="+f.srv.ClientSecret, "R_LEASE="+f.lease.String())
		r := &replica{cmd: cmd, lines: make(chan string, 16), stderr: &logBuf{}}
		cmd.Stderr = r.stderr
		var err error
		r.stdin, err = cmd.StdinPipe()
		require.NoError(f.t, err)
		out, err := cmd.StdoutPipe()
		require.NoError(f.t, err)
		require.NoError(f.t, cmd.Start())
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				r.lines <- sc.Text()
			}
			close(r.lines)
		}()
		f.t.Cleanup(func() {
			r.stdin.Close()
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-done
			}
		})
		rs[i] = r
	}
	for i, r := range rs {
		require.Equal(f.t, "ready", r.read(f.t, 60*time.Second), "replica %d", i)
	}
	return rs
}

func (r *replica) send(t *testing.T, line string) {
	t.Helper()
	_, err := io.WriteString(r.stdin, line+"\n")
	require.NoError(t, err)
}

// read returns the replica's next line, failing the test after d.
func (r *replica) read(t *testing.T, d time.Duration) string {
	t.Helper()
	select {
	case l, ok := <-r.lines:
		require.True(t, ok, "replica exited; stderr:\n%s", r.stderr.String())
		return l
	case <-time.After(d):
		require.FailNow(t, "no answer from replica", "within %v; stderr:\n%s", d, r.stderr.String())
		return ""
	}
}

// loadResult is a replica's answer to "load".
type loadResult struct{ calls, errors, maxLatencyMS, distinct int }

func parseLoad(t *testing.T, line string) loadResult {
	t.Helper()
	var r loadResult
	_, err := fmt.Sscanf(line, "load %d %d %d %d", &r.calls, &r.errors, &r.maxLatencyMS, &r.distinct)
	require.NoError(t, err, line)
	return r
}

// 12 cold replicas asking at once: one token request, one token, and
// nothing readable in Redis.
func TestFleetColdStartOneTokenRequest(t *testing.T) {
	f := newFleet(t, time.Hour, 5*time.Second)
	rs := f.start(12)
	for _, r := range rs {
		r.send(t, "token")
	}
	got := map[string]int{}
	for _, r := range rs {
		line := r.read(t, 30*time.Second)
		require.True(t, strings.HasPrefix(line, "token "), line)
		got[strings.TrimPrefix(line, "token ")]++
	}
	assert.Len(t, got, 1, "every replica got the same token")
	assert.EqualValues(t, 1, f.srv.TokenRequests.Load(), "exactly one token request for 12 replicas")

	// Scan every key: no token, no secret, no credential name.
	rdb := f.redis.Client(t)
	s := newStore(t, rdb, Options{})
	b, err := s.Load(context.Background(), credName)
	require.NoError(t, err)
	rec, err := record.Decode(b)
	require.NoError(t, err)
	for h := range got {
		assert.Equal(t, h, tokenHash(rec.AccessToken), "the stored token is the one served")
	}
	all := dump(t, rdb)
	assert.NotEmpty(t, all)
	for k, v := range all {
		for _, secret := range []string{rec.AccessToken, f.srv.ClientSecret, f.srv.ClientID, credName, testPass} {
			assert.NotContains(t, k, secret)
			assert.NotContains(t, string(v), secret, "key %s", k)
		}
	}
}

// 64 goroutines in each of 8 replicas over several token lifetimes: token
// requests follow the lifetimes, not the replicas.
func TestFleetManyLifetimes(t *testing.T) {
	lifetime := 3 * time.Second
	f := newFleet(t, lifetime, 5*time.Second)
	rs := f.start(8)
	run := 4 * lifetime
	for _, r := range rs {
		r.send(t, fmt.Sprintf("load 64 %s", run))
	}
	var calls int
	for i, r := range rs {
		res := parseLoad(t, r.read(t, run+30*time.Second))
		assert.Zero(t, res.errors, "replica %d: %+v; stderr:\n%s", i, res, r.stderr.String())
		calls += res.calls
	}
	requests := f.srv.TokenRequests.Load()
	lifetimes := int64(run / lifetime)
	t.Logf("%d calls, %d token requests over %d lifetimes, 8 replicas", calls, requests, lifetimes)
	// A token is replaced a quarter of its life early: about 4/3 requests
	// per lifetime, plus the first. Without sharing: 8 times that.
	assert.LessOrEqual(t, requests, 2*lifetimes+2)
	assert.GreaterOrEqual(t, requests, lifetimes)
}

// Redis killed mid-run: callers keep getting tokens, each replica logs the
// outage once naming Redis; Redis back: sharing resumes.
func TestFleetRedisOutage(t *testing.T) {
	lifetime := 2 * time.Second
	f := newFleet(t, lifetime, 5*time.Second)
	rs := f.start(4)
	for _, r := range rs {
		r.send(t, "token")
		require.Contains(t, r.read(t, 30*time.Second), "token ")
	}
	run := 6 * time.Second
	for _, r := range rs {
		r.send(t, "load 16 "+run.String())
	}
	before := f.srv.TokenRequests.Load()
	f.redis.Kill()
	// Every replica's token goes stale within a lifetime; each must then
	// fetch its own, without Redis.
	waitFor(t, func() bool { return f.srv.TokenRequests.Load() >= before+int64(len(rs)) })
	f.redis.Restart()
	for i, r := range rs {
		res := parseLoad(t, r.read(t, run+30*time.Second))
		assert.Zero(t, res.errors, "replica %d: %+v", i, res)
		assert.Less(t, res.maxLatencyMS, 3000, "replica %d: a caller waited %dms", i, res.maxLatencyMS)
		log := r.stderr.String()
		assert.Equal(t, 1, strings.Count(log, "Redis unavailable"), "replica %d logs the outage once:\n%s", i, log)
		assert.Contains(t, log, "Redis answers again", "replica %d", i)
	}

	// Shared again: over the next lifetimes, requests follow the lifetimes.
	before = f.srv.TokenRequests.Load()
	run = 3 * lifetime
	for _, r := range rs {
		r.send(t, "load 16 "+run.String())
	}
	for i, r := range rs {
		res := parseLoad(t, r.read(t, run+30*time.Second))
		assert.Zero(t, res.errors, "replica %d: %+v", i, res)
	}
	after := f.srv.TokenRequests.Load() - before
	t.Logf("after Redis came back: %d token requests over 3 lifetimes, 4 replicas", after)
	assert.LessOrEqual(t, after, int64(2*3+2), "not one per replica per lifetime (that would be 12)")
}

// The lease holder killed (SIGKILL) in the middle of its token request:
// the next replica gets a token within the lease.
func TestFleetLeaseHolderKilled(t *testing.T) {
	lease := 2 * time.Second
	f := newFleet(t, time.Hour, lease)
	entered, testDone := make(chan struct{}, 1), make(chan struct{})
	t.Cleanup(func() { close(testDone) }) // before the server closes: it waits for this handler
	var first atomic.Bool
	f.srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" && first.CompareAndSwap(false, true) {
			io.Copy(io.Discard, r.Body) // so that the server notices the client going away
			entered <- struct{}{}
			select { // hangs until its client goes away
			case <-r.Context().Done():
			case <-testDone:
			}
			return true
		}
		return false
	})
	rs := f.start(2)
	holder, next := rs[0], rs[1]
	holder.send(t, "token")
	select {
	case <-entered:
	case <-time.After(30 * time.Second):
		require.FailNow(t, "the holder never asked the token endpoint")
	}
	next.send(t, "token")
	// next is waiting on the lease: subscribed to its release channel.
	rdb := f.redis.Client(t)
	s := newStore(t, rdb, Options{})
	waitFor(t, func() bool {
		return rdb.PubSubNumSub(context.Background(), s.channel(credName)).Val()[s.channel(credName)] == 1
	})
	killed := time.Now()
	require.NoError(t, holder.cmd.Process.Signal(syscall.SIGKILL))
	line := next.read(t, 30*time.Second)
	took := time.Since(killed)
	require.True(t, strings.HasPrefix(line, "token "), line)
	t.Logf("next replica got a token %v after the holder was killed (lease %v)", took, lease)
	assert.Less(t, took, lease+1500*time.Millisecond, "within the lease, the poll and the token request")
	assert.EqualValues(t, 2, f.srv.TokenRequests.Load())
}
