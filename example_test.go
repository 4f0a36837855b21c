package tokenmgr_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// get makes a GET through hc and prints the status and body.
func get(hc *http.Client, url string) {
	resp, err := hc.Get(url)
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body))
}

// A Client for the client credentials grant, and an *http.Client that
// sends its token. The token server here is an in-process test server;
// use your provider's token URL and credentials.
func ExampleNew() {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()

	c, err := tokenmgr.New(tokenmgr.Config{
		Source: tokenmgr.ClientCredentials(&clientcredentials.Config{
			ClientID:     srv.ClientID,
			ClientSecret: srv.ClientSecret,
			TokenURL:     srv.TokenURL(),
			Scopes:       []string{"items:read"},
		}),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	hc := c.HTTPClient()
	get(hc, srv.URL+"/v1/items")
	get(hc, srv.URL+"/v1/orders")
	fmt.Println("tokens fetched:", c.Stats().Fetches)
	// Output:
	// 200 hello from /v1/items
	// 200 hello from /v1/orders
	// tokens fetched: 1
}

// NewFromEnv configures a Client from TOKENMGR_* variables, as a program
// deployed with its credentials in the environment would.
func ExampleNewFromEnv() {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()

	// Normally set outside the program.
	vars := map[string]string{
		"TOKENMGR_TOKEN_URL":     srv.TokenURL(),
		"TOKENMGR_CLIENT_ID":     srv.ClientID,
		"TOKENMGR_CLIENT_SECRET": srv.ClientSecret,
		"TOKENMGR_STORE":         "memory", // keyring or file to survive restarts
	}
	for k, v := range vars {
		os.Setenv(k, v)
		defer os.Unsetenv(k)
	}

	c, err := tokenmgr.NewFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	tok, err := c.Token(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("token type:", tok.Type())
	fmt.Println("valid:", tok.Valid())
	get(c.HTTPClient(), srv.URL+"/v1/items")
	// Output:
	// token type: Bearer
	// valid: true
	// 200 hello from /v1/items
}

// Transport wraps the RoundTripper an *http.Client already has. When the
// server rejects the token (here it is revoked, and the server answers as
// AWS STS does, 403 InvalidClientTokenId), the transport fetches a new one
// and replays the request once: the caller sees only the 200.
func ExampleClient_Transport() {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()

	c, err := tokenmgr.New(tokenmgr.Config{
		Source: tokenmgr.ClientCredentials(&clientcredentials.Config{
			ClientID:     srv.ClientID,
			ClientSecret: srv.ClientSecret,
			TokenURL:     srv.TokenURL(),
		}),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	existing := &http.Client{Transport: http.DefaultTransport}
	existing.Transport = c.Transport(existing.Transport)
	get(existing, srv.URL+"/v1/items")

	tok, err := c.Token(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	srv.Revoke(tok.AccessToken)
	get(existing, srv.URL+"/v1/items")

	st := c.Stats()
	fmt.Println("rejected by the server:", srv.Rejected.Load())
	fmt.Println("replayed:", st.Replays, "fetched:", st.Fetches)
	// Output:
	// 200 hello from /v1/items
	// 200 hello from /v1/items
	// rejected by the server: 1
	// replayed: 1 fetched: 2
}

// TokenSource hands the Client to code that takes an oauth2.TokenSource.
// The Client still decides when a token is fetched.
func ExampleClient_TokenSource() {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()

	c, err := tokenmgr.New(tokenmgr.Config{
		Source: tokenmgr.ClientCredentials(&clientcredentials.Config{
			ClientID:     srv.ClientID,
			ClientSecret: srv.ClientSecret,
			TokenURL:     srv.TokenURL(),
		}),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	hc := oauth2.NewClient(context.Background(), c.TokenSource())
	get(hc, srv.URL+"/v1/items")
	get(hc, srv.URL+"/v1/orders")
	fmt.Println("token requests:", srv.TokenRequests.Load())
	// Output:
	// 200 hello from /v1/items
	// 200 hello from /v1/orders
	// token requests: 1
}

// OnRefresh sees every refresh attempt with the reason it ran, as a
// RefreshReason to switch on; a panic in a Source comes back as a
// *PanicError instead of ending the program.
func ExampleConfig_onRefresh() {
	c, err := tokenmgr.New(tokenmgr.Config{
		Source: sourceFunc(func() (*oauth2.Token, error) { panic("a bug in the source") }),
		OnRefresh: func(ev tokenmgr.RefreshEvent) {
			switch ev.Reason {
			case tokenmgr.ReasonEarly:
				// a background refresh: the token in service is still served
			case tokenmgr.ReasonInitial, tokenmgr.ReasonExpired, tokenmgr.ReasonInvalid:
				fmt.Println("refresh:", ev.Reason, "failed:", ev.Err != nil)
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	_, err = c.Token(context.Background())
	var pe *tokenmgr.PanicError
	if errors.As(err, &pe) {
		fmt.Println("panic in", pe.Where+":", pe.Value)
	}
	// Output:
	// refresh: initial failed: true
	// panic in Source: a bug in the source
}

type sourceFunc func() (*oauth2.Token, error)

func (f sourceFunc) Token() (*oauth2.Token, error) { return f() }

// A Cache keeps any kind of credential by the Client's rules. Here a
// session key from a login call, kept until it expires.
func ExampleNewCache() {
	type session struct {
		key     string
		expires time.Time
	}
	n := 0
	c, err := tokenmgr.NewCache(tokenmgr.Kind[session]{
		Fetch: func(ctx context.Context) (session, error) {
			n++ // a login request would go here
			return session{key: fmt.Sprintf("session-%d", n), expires: time.Now().Add(time.Hour)}, nil
		},
		ID:     func(s session) string { return s.key },
		Expiry: func(s session) time.Time { return s.expires },
	}, tokenmgr.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	s, _ := c.Get(context.Background())
	s, _ = c.Get(context.Background())
	fmt.Println(s.key)
	// Output: session-1
}
