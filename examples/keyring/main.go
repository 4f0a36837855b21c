// Keyring shows tokenmgr keeping its token in the operating system's
// keyring (the Secret Service on Linux, Keychain on macOS, Credential
// Manager on Windows), so a restarted program adopts the token the previous
// run fetched instead of asking the token endpoint again. The token server
// is in-process; only the keyring is real.
//
// It runs a Client on store.NewKeyring("tokenmgr-example"), closes it, then
// "restarts" with a second Client on the same keyring entry, which serves
// the stored token without a token request. It deletes the entry at the
// end. When no keyring is reachable it prints the store's error, which says
// what to do, and exits 1; any other failure exits non-zero too.
//
//	go run ./examples/keyring
//
// On a Linux machine without a desktop session, run it under a private
// Secret Service:
//
//	dbus-run-session -- sh -c 'echo -n pw | gnome-keyring-daemon --unlock --components=secrets >/dev/null; go run ./examples/keyring'
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

const (
	service = "tokenmgr-example" // the keyring service name
	key     = "keyring-example"  // the credential's name within it
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx := context.Background()
	st := store.NewKeyring(service)

	// A Client whose store fails only logs it (and goes on with the token
	// in memory), so check the keyring is reachable before relying on it.
	if _, err := st.Load(ctx, key); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("the keyring is not usable: %w", err)
	}
	// Start the first run from a clean slate.
	if err := st.Delete(ctx, key); err != nil {
		return fmt.Errorf("the keyring is not usable: %w", err)
	}
	defer func() {
		if err := st.Delete(ctx, key); err != nil {
			log.Printf("cleanup: %v", err)
		}
	}()

	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	newClient := func() (*tokenmgr.Client, error) {
		return tokenmgr.New(tokenmgr.Config{
			Source: tokenmgr.ClientCredentials(&clientcredentials.Config{
				ClientID:     srv.ClientID,
				ClientSecret: srv.ClientSecret,
				TokenURL:     srv.TokenURL(),
			}),
			Store: store.NewKeyring(service), // what a fresh process would open
			Key:   key,
		})
	}

	// First run: nothing stored, so the Client fetches and saves.
	c1, err := newClient()
	if err != nil {
		return err
	}
	if err := callAPI(c1, srv.URL+"/v1/items"); err != nil {
		return fmt.Errorf("first run: %w", err)
	}
	tok1, err := c1.Token(ctx)
	if err != nil {
		return err
	}
	st1 := c1.Stats()
	c1.Close()
	fmt.Printf("first run:  token requests %d, fetched %d, adopted from keyring %d\n",
		srv.TokenRequests.Load(), st1.Fetches, st1.StoreLoads)
	if st1.Fetches != 1 {
		return fmt.Errorf("first run fetched %d tokens, want 1", st1.Fetches)
	}
	if _, err := st.Load(ctx, key); err != nil {
		return fmt.Errorf("nothing saved in the keyring after the first run: %w", err)
	}
	fmt.Printf("keyring:    service %q holds credential %q\n", service, key)

	// "Restart": a new Client on the same keyring entry adopts the token.
	requestsBefore := srv.TokenRequests.Load()
	c2, err := newClient()
	if err != nil {
		return err
	}
	defer c2.Close()
	if err := callAPI(c2, srv.URL+"/v1/items"); err != nil {
		return fmt.Errorf("second run: %w", err)
	}
	tok2, err := c2.Token(ctx)
	if err != nil {
		return err
	}
	st2 := c2.Stats()
	newRequests := srv.TokenRequests.Load() - requestsBefore
	fmt.Printf("second run: token requests %d, fetched %d, adopted from keyring %d, same token: %t\n",
		newRequests, st2.Fetches, st2.StoreLoads, tok2.AccessToken == tok1.AccessToken)
	if newRequests != 0 || st2.Fetches != 0 || st2.StoreLoads != 1 || tok2.AccessToken != tok1.AccessToken {
		return errors.New("the restarted Client did not adopt the stored token")
	}

	// Clean up now, and show the entry is gone.
	if err := st.Delete(ctx, key); err != nil {
		return fmt.Errorf("cleanup: %w", err)
	}
	_, err = st.Load(ctx, key)
	fmt.Printf("cleanup:    credential deleted: %t\n", errors.Is(err, store.ErrNotFound))
	if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("after Delete, Load returned %v, want store.ErrNotFound", err)
	}
	return nil
}

// callAPI makes one request to the protected API through c's transport.
func callAPI(c *tokenmgr.Client, url string) error {
	resp, err := c.HTTPClient().Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, body)
	}
	return nil
}
