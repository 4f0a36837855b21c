package login_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/http"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/login"
	"github.com/tokenmgr/tokenmgr/store"
)

// A command-line program signs its user in once, then every run serves
// (and refreshes) the saved sign-in.
func Example() {
	ctx := context.Background()
	cfg := login.Config{
		Issuer:   "https://id.example.com",
		ClientID: "my-cli",
		Scopes:   []string{"openid", "email", "offline_access"},
		Store:    store.NewKeyring("my-cli"),
	}
	c, err := login.NewClient(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := c.Token(ctx); errors.Is(err, tokenmgr.ErrLoginRequired) {
		// Nothing saved yet, or the sign-in was revoked: sign in.
		c.Close()
		if _, err := login.Browser(ctx, cfg); err != nil {
			log.Fatal(err)
		}
		if c, err = login.NewClient(ctx, cfg); err != nil {
			log.Fatal(err)
		}
	}
	defer c.Close()
	resp, err := c.HTTPClient().Get("https://api.example.com/me")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(resp.StatusCode == http.StatusOK)
}
