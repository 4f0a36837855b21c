// Quickstart shows tokenmgr end to end, offline: a client-credentials
// Client whose HTTPClient calls a protected API. It starts an in-process
// OAuth 2.0 token server (tokens live 3 seconds) and an API that answers
// tokens it does not accept with AWS's InvalidClientTokenId. Then it makes
// requests across several token lifetimes, revokes the token in service
// once, and prints what happened: tokens fetched, background refreshes and
// requests replayed after the server rejected a token. No request fails.
//
//	go run ./examples/quickstart
package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

func main() {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: 3 * time.Second})
	defer srv.Close()

	var early, expired atomic.Int64
	client, err := tokenmgr.New(tokenmgr.Config{
		Source: tokenmgr.ClientCredentials(&clientcredentials.Config{
			ClientID:     srv.ClientID,
			ClientSecret: srv.ClientSecret,
			TokenURL:     srv.TokenURL(),
		}),
		OnRefresh: func(e tokenmgr.RefreshEvent) {
			switch {
			case e.Err != nil:
				log.Printf("refresh (%s) failed: %v", e.Reason, e.Err)
			case e.Reason == "early":
				early.Add(1)
			default:
				expired.Add(1)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()
	hc := client.HTTPClient()

	get := func(path string) {
		resp, err := hc.Get(srv.URL + path)
		if err != nil {
			log.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			log.Fatalf("GET %s: %s: %s", path, resp.Status, body)
		}
	}

	start := time.Now()
	requests := 0
	for time.Since(start) < 8*time.Second {
		get("/v1/items")
		requests++
		if requests == 20 {
			// The server revokes the token in service: the next request is
			// answered InvalidClientTokenId, and the transport recovers.
			tok, _ := client.Token(context.Background())
			srv.Revoke(tok.AccessToken)
			fmt.Println("server revoked the token in service")
		}
		time.Sleep(50 * time.Millisecond)
	}

	st := client.Stats()
	fmt.Printf("requests sent:              %d, all answered 200\n", requests)
	fmt.Printf("tokens fetched:             %d (lifetime 3s over %s)\n", st.Fetches, time.Since(start).Round(time.Second))
	fmt.Printf("background refreshes:       %d (callers did not wait)\n", early.Load())
	fmt.Printf("refreshes callers waited:   %d (the first token, and after the revocation)\n", expired.Load())
	fmt.Printf("rejected by the API:        %d\n", srv.Rejected.Load())
	fmt.Printf("replayed with a new token:  %d\n", st.Replays)
}
