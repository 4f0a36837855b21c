package logintest_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/tokenmgr/tokenmgr/login"
	"github.com/tokenmgr/tokenmgr/login/logintest"
	"github.com/tokenmgr/tokenmgr/store"
)

// A login leaves no goroutine behind: the listener, its server and the
// OpenURL call are done when Browser returns, and so is the device
// login's polling when Device returns; a Client built by NewClient stops
// with Close.
func TestNoGoroutineLeft(t *testing.T) {
	p := start(t, logintest.Options{})
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	cfg := config(p, store.NewMemory())
	cfg.HTTPClient = hc
	before := goleak.IgnoreCurrent()
	defer func() {
		// goleak.Find retries for about 2 s; a loaded machine may take
		// longer to end the provider's side of a closed connection.
		deadline := time.Now().Add(15 * time.Second)
		for {
			err := goleak.Find(before)
			if err == nil || time.Now().After(deadline) {
				require.NoError(t, err)
				return
			}
		}
	}()
	_, err := login.Browser(ctxT(t), cfg)
	require.NoError(t, err)
	_, err = login.Device(ctxT(t), cfg)
	require.NoError(t, err)
	c, err := login.NewClient(ctxT(t), cfg)
	require.NoError(t, err)
	tok, err := c.Token(ctxT(t))
	require.NoError(t, err)
	c.Invalidate(tok)
	_, err = c.Token(ctxT(t))
	require.NoError(t, err)
	require.NoError(t, c.Close())
}
