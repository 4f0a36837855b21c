package logintest_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/login"
	"github.com/tokenmgr/tokenmgr/login/logintest"
	"github.com/tokenmgr/tokenmgr/store"
)

// chromium finds a Chromium to drive: absent, the test skips outside CI
// and fails in CI, which installs it (.ci/run).
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed; .ci/run installs it (apt-get install chromium)")
	}
	t.Skip("chromium is not installed (apt-get install chromium): the real-browser login test skips")
	return ""
}

// A real browser: headless Chromium, as OpenURL, follows the provider's
// sign-in and redirects to the loopback listener, which answers the page
// that ends the login.
func TestBrowserLoginWithChromium(t *testing.T) {
	bin := chromium(t)
	p := start(t, logintest.Options{})
	st := store.NewMemory()
	cfg := config(p, st)
	// Chromium's helpers may still be writing its profile for a moment
	// after it is killed: removed here, an error ignored, rather than by
	// t.TempDir, whose failed removal fails the test.
	profile, err := os.MkdirTemp("", "logintest-chromium-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(profile) })
	var browser *exec.Cmd
	cfg.OpenURL = func(_ context.Context, authURL string) error {
		browser = exec.Command(bin, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
			"--no-first-run", "--no-default-browser-check", "--user-data-dir="+filepath.Join(profile, "chromium"), authURL)
		return browser.Start()
	}
	t.Cleanup(func() {
		if browser != nil && browser.Process != nil {
			browser.Process.Kill()
			browser.Wait()
		}
	})
	tok, err := login.Browser(ctxT(t), cfg)
	require.NoError(t, err)
	assert.NotEmpty(t, tok.RefreshToken)
	assert.NotEmpty(t, stored(t, st, "default").IDToken)
	assert.EqualValues(t, 1, p.Requests("/authorize"), "the browser went to the provider")
}
