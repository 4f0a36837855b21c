// Refreshtoken shows the refresh_token grant with a server that rotates
// refresh tokens: every refresh returns a new refresh token and kills the
// one redeemed, so presenting a used one fails with invalid_grant. Offline:
// an in-process OAuth 2.0 server (tokens live 2 seconds, rotation on) and a
// protected API.
//
// A Client built with tokenmgr.RefreshToken(cfg, seed) and a memory store
// serves 8 goroutines calling the API across several lifetimes: each
// rotated refresh token is saved before use and redeemed exactly once. Then
// the program "restarts" with a second Client on the same store, seeded
// again with the original refresh token, long dead: the refresh token found
// in the store wins over the seed, so refreshing goes on. The example
// prints the rotations and exits non-zero unless no invalid_grant occurred.
//
//	go run ./examples/refreshtoken
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

const lifetime = 2 * time.Second

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: lifetime, Rotate: true})
	defer srv.Close()
	seed := srv.IssueRefreshToken() // what the user's one-time login produced

	cfg := &oauth2.Config{
		ClientID:     srv.ClientID,
		ClientSecret: srv.ClientSecret,
		Endpoint:     oauth2.Endpoint{TokenURL: srv.TokenURL()},
	}
	st := store.NewMemory() // an encrypted file or the keyring in a real program

	var failed atomic.Int64
	newClient := func() (*tokenmgr.Client, error) {
		return tokenmgr.New(tokenmgr.Config{
			Source: tokenmgr.RefreshToken(cfg, seed),
			Store:  st,
			Key:    "refreshtoken-example",
			OnRefresh: func(e tokenmgr.RefreshEvent) {
				if e.Err != nil {
					failed.Add(1)
					log.Printf("refresh (%s) failed: %v", e.Reason, e.Err)
				}
			},
		})
	}

	// First run: 8 goroutines over 2.5 lifetimes.
	c1, err := newClient()
	if err != nil {
		return err
	}
	n1, err := load(c1, srv.URL, 5*lifetime/2)
	if err != nil {
		c1.Close()
		return err
	}
	s1 := c1.Stats()
	c1.Close()
	rot1 := srv.Issued.Load()
	fmt.Printf("first run:  %d requests, all 200; refresh tokens redeemed %d, rotations %d\n", n1, s1.Fetches, rot1)

	// Restart with the same seed, which the server has long forgotten.
	c2, err := newClient()
	if err != nil {
		return err
	}
	defer c2.Close()
	n2, err := load(c2, srv.URL, 3*lifetime/2)
	if err != nil {
		return err
	}
	s2 := c2.Stats()
	fmt.Printf("second run: %d requests, all 200; access token adopted from the store: %t; refresh tokens redeemed %d, rotations %d\n",
		n2, s2.StoreLoads > 0, s2.Fetches, srv.Issued.Load()-rot1)

	fmt.Printf("token requests %d, invalid_grant %d, failed refreshes %d\n",
		srv.TokenRequests.Load(), srv.InvalidGrants.Load(), failed.Load())
	switch {
	case srv.InvalidGrants.Load() != 0 || failed.Load() != 0:
		return errors.New("a refresh token was presented twice or a refresh failed")
	case rot1 < 2:
		return fmt.Errorf("first run: %d rotations over 2.5 lifetimes, want at least 2", rot1)
	case s2.Fetches < 1:
		// The seed is dead: any redemption that worked used the stored
		// refresh token.
		return fmt.Errorf("second run redeemed %d refresh tokens over 1.5 lifetimes, want at least 1", s2.Fetches)
	case srv.TokenRequests.Load() != srv.Issued.Load():
		return fmt.Errorf("%d token requests for %d tokens issued", srv.TokenRequests.Load(), srv.Issued.Load())
	}
	return nil
}

// load has 8 goroutines call the API through c for d, and returns how many
// requests were made. Any answer other than 200 is an error.
func load(c *tokenmgr.Client, base string, d time.Duration) (int64, error) {
	hc := c.HTTPClient()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var n atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for ctx.Err() == nil {
				resp, err := hc.Get(base + "/v1/items")
				if err != nil {
					errc <- err
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errc <- fmt.Errorf("GET /v1/items: %s: %s", resp.Status, body)
					return
				}
				n.Add(1)
				time.Sleep(20 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	close(errc)
	return n.Load(), <-errc
}
