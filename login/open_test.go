package login

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// $BROWSER comes first: a list separated by the path list separator,
// "%s" standing for the URL (appended when absent); an entry that does not
// start falls through to the next.
func TestOpenBrowserUsesBROWSER(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("a shell script stands for the browser")
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "opened")
	script := filepath.Join(dir, "browser.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nprintf '%s' \"$1\" > "+out+".tmp && mv "+out+".tmp "+out+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BROWSER", filepath.Join(dir, "missing-browser")+string(os.PathListSeparator)+script+" %s")
	const u = "http://127.0.0.1:1/authorize?state=x&client_id=y"
	if err := openBrowser(context.Background(), u); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(out)
		if err == nil {
			if strings.TrimSpace(string(b)) != u {
				t.Fatalf("the browser got %q", b)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the browser was not started")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Nothing to start: an error, which Browser turns into the printed URL.
func TestOpenBrowserNoneFound(t *testing.T) {
	t.Setenv("BROWSER", "")
	t.Setenv("PATH", t.TempDir())
	if err := openBrowser(context.Background(), "http://127.0.0.1:1/"); err == nil {
		t.Fatal("no error without a browser")
	}
}
