// Wrap shows tokenmgr added to an *http.Client the program already has,
// keeping everything that client was set up with: its Timeout and its own
// base transport (here one that sets a User-Agent). Offline: it starts an
// in-process OAuth 2.0 token server and protected API.
//
// The existing client's Transport is replaced by
// c.Transport(existing.Transport), which attaches the token and hands each
// request on to the old transport. The example checks that the API saw both
// the token and the User-Agent, and that the client's 500ms Timeout still
// cuts off a slow endpoint. Any other outcome exits non-zero.
//
//	go run ./examples/wrap
package main

import (
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

const userAgent = "inventory-sync/2.3"

// userAgentTransport is the kind of transport a program already has: it
// sets a header, then sends the request on through base.
type userAgentTransport struct {
	base http.RoundTripper
}

func (t *userAgentTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r2 := req.Clone(req.Context()) // a RoundTripper must not modify its request
	r2.Header.Set("User-Agent", userAgent)
	return t.base.RoundTrip(r2)
}

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()

	// Record what the API receives, and make /slow slower than the
	// client's timeout.
	var mu sync.Mutex
	var seenUA []string
	var seenAuth int
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" {
			return false
		}
		mu.Lock()
		seenUA = append(seenUA, r.UserAgent())
		if strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
			seenAuth++
		}
		mu.Unlock()
		if r.URL.Path == "/slow" {
			select {
			case <-time.After(2 * time.Second):
			case <-r.Context().Done():
			}
		}
		return false // let the API answer as usual
	})

	// The client the program already has.
	existing := &http.Client{
		Timeout:   500 * time.Millisecond,
		Transport: &userAgentTransport{base: http.DefaultTransport},
	}

	c, err := tokenmgr.New(tokenmgr.Config{
		Source: tokenmgr.ClientCredentials(&clientcredentials.Config{
			ClientID:     srv.ClientID,
			ClientSecret: srv.ClientSecret,
			TokenURL:     srv.TokenURL(),
		}),
	})
	if err != nil {
		return err
	}
	defer c.Close()

	// The one line that adds tokenmgr: the token is attached first, then
	// the request goes through the client's own transport.
	existing.Transport = c.Transport(existing.Transport)

	for i := 0; i < 3; i++ {
		resp, err := existing.Get(srv.URL + "/v1/items")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /v1/items: %s: %s", resp.Status, body)
		}
		fmt.Printf("GET /v1/items: %d %q\n", resp.StatusCode, body)
	}

	mu.Lock()
	ua, auth := append([]string(nil), seenUA...), seenAuth
	mu.Unlock()
	fmt.Printf("API saw a bearer token on %d of %d requests\n", auth, len(ua))
	fmt.Printf("API saw User-Agent %q\n", ua[0])
	if auth != len(ua) {
		return errors.New("a request reached the API without the token")
	}
	for _, u := range ua {
		if u != userAgent {
			return fmt.Errorf("API saw User-Agent %q, want %q: the base transport was bypassed", u, userAgent)
		}
	}
	fmt.Printf("tokens fetched: %d for %d requests\n", c.Stats().Fetches, len(ua))
	if c.Stats().Fetches != 1 {
		return fmt.Errorf("fetched %d tokens, want 1", c.Stats().Fetches)
	}

	// The client's Timeout still applies to the whole request.
	start := time.Now()
	resp, err := existing.Get(srv.URL + "/slow")
	if err == nil {
		resp.Body.Close()
		return fmt.Errorf("GET /slow answered %s; want the client's %v timeout", resp.Status, existing.Timeout)
	}
	fmt.Printf("GET /slow: timed out after %v (client Timeout %v): %t\n",
		time.Since(start).Round(100*time.Millisecond), existing.Timeout, isTimeout(err))
	if !isTimeout(err) {
		return fmt.Errorf("GET /slow: %v; want a timeout", err)
	}
	return nil
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}
