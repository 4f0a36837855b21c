package leakcheck

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

type fakeTB struct{ errs []string }

func (f *fakeTB) Helper() {}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.errs = append(f.errs, fmt.Sprintf(format, args...))
}

func leakyWorker(stop chan struct{}) { <-stop }

func TestCheckFindsLeakAndIgnoresEnded(t *testing.T) {
	s := Take()
	stop := make(chan struct{})
	go leakyWorker(stop)
	f := &fakeTB{}
	Check(f, s, Options{Timeout: 50 * time.Millisecond})
	if len(f.errs) != 1 || !strings.Contains(f.errs[0], "leakyWorker") {
		t.Fatalf("want one leak naming leakyWorker, got %q", f.errs)
	}
	f = &fakeTB{}
	Check(f, s, Options{Timeout: 50 * time.Millisecond, Ignore: []string{"leakcheck.leakyWorker"}})
	if len(f.errs) != 0 {
		t.Fatalf("ignored goroutine reported: %q", f.errs)
	}
	close(stop)
	f = &fakeTB{}
	Check(f, s, Options{Timeout: 5 * time.Second})
	if len(f.errs) != 0 {
		t.Fatalf("ended goroutine reported: %q", f.errs)
	}
}
