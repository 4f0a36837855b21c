package tokenmgrtest_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// A test of code that calls an OAuth 2.0 protected API: the Server stands
// in for the provider. Here the token in service is revoked, and the
// Client's transport refreshes it and replays the request.
func ExampleServer() {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()

	client, err := tokenmgr.New(tokenmgr.Config{
		Source: tokenmgr.ClientCredentials(&clientcredentials.Config{
			ClientID:     srv.ClientID,
			ClientSecret: srv.ClientSecret,
			TokenURL:     srv.TokenURL(),
		}),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	get := func() {
		resp, err := client.HTTPClient().Get(srv.URL + "/v1/items")
		if err != nil {
			log.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		fmt.Println(resp.StatusCode, string(body))
	}
	get()

	tok, err := client.Token(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	srv.Revoke(tok.AccessToken)
	get()
	fmt.Println("tokens issued:", srv.Issued.Load(), "rejected:", srv.Rejected.Load())
	// Output:
	// 200 hello from /v1/items
	// 200 hello from /v1/items
	// tokens issued: 2 rejected: 1
}

// A fault hook: the token endpoint answers its first request with 503,
// as a provider under load might, and the Client retries.
func ExampleServer_SetHook() {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path == "/token" && srv.TokenRequests.Load() == 1 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return true
		}
		return false // the server answers
	})

	client, err := tokenmgr.New(tokenmgr.Config{
		Source: tokenmgr.ClientCredentials(&clientcredentials.Config{
			ClientID:     srv.ClientID,
			ClientSecret: srv.ClientSecret,
			TokenURL:     srv.TokenURL(),
			// One request per attempt (auto-detection would retry the
			// failed request at once with the credentials in the form).
			AuthStyle: oauth2.AuthStyleInHeader,
		}),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer client.Close()

	tok, err := client.Token(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("valid token:", tok.Valid(), "after", srv.TokenRequests.Load(), "token requests")
	// Output:
	// valid token: true after 2 token requests
}
