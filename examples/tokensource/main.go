// Tokensource shows a tokenmgr Client handed to code that takes an
// oauth2.TokenSource: here oauth2.NewClient, the way many API client
// libraries are configured. Offline: it starts an in-process OAuth 2.0
// token server whose tokens live 2 seconds, and a protected API.
//
// The library asks c.TokenSource() for a token on its requests, and
// tokenmgr decides when to fetch: requests spread over several token
// lifetimes all succeed, with about one token request per lifetime, however
// many requests are made. Any other outcome exits non-zero.
//
// oauth2.NewClient caches the token it is given until that token's expiry
// and does not replay a request the server rejects. Where you build the
// *http.Client yourself, c.HTTPClient() or c.Transport(base) also recovers
// from a revoked token (see examples/aws).
//
//	go run ./examples/tokensource
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

const lifetime = 2 * time.Second

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: lifetime})
	defer srv.Close()

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

	// A library that takes an oauth2.TokenSource.
	ts := c.TokenSource()
	hc := oauth2.NewClient(context.Background(), ts)

	tok, err := ts.Token()
	if err != nil {
		return err
	}
	fmt.Printf("TokenSource().Token(): type %s, expires in %v\n",
		tok.Type(), time.Until(tok.Expiry).Round(time.Second))

	start := time.Now()
	requests := 0
	for time.Since(start) < 3*lifetime {
		resp, err := hc.Get(srv.URL + "/v1/items")
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("request %d: %s: %s", requests+1, resp.Status, body)
		}
		requests++
		time.Sleep(25 * time.Millisecond)
	}

	st := c.Stats()
	fmt.Printf("requests through oauth2.NewClient: %d over %v, all answered 200\n",
		requests, time.Since(start).Round(time.Second))
	fmt.Printf("token requests: %d (token lifetime %v)\n", srv.TokenRequests.Load(), lifetime)
	fmt.Printf("rejected by the API: %d\n", srv.Rejected.Load())
	// About one fetch per lifetime: the first token and its replacements.
	if st.Fetches < 3 || st.Fetches > 6 {
		return fmt.Errorf("fetched %d tokens over 3 lifetimes, want 3 to 6", st.Fetches)
	}
	if srv.Rejected.Load() != 0 {
		return fmt.Errorf("the API rejected %d requests", srv.Rejected.Load())
	}
	return nil
}
