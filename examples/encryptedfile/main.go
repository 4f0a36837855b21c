// Encryptedfile shows tokenmgr keeping its token in an encrypted file, so a
// restarted program adopts the token the previous run fetched instead of
// asking the token endpoint again. Offline: it starts an in-process OAuth
// 2.0 token server and writes the file (XChaCha20-Poly1305, key derived from
// a passphrase with scrypt) to a temporary directory it removes at the end.
//
// It runs a Client, closes it, then "restarts" by opening the file again
// with a second Client, which serves the stored token without a token
// request. Finally it opens the file with a wrong passphrase: that is a
// clear error (store.ErrWrongKey) and the file is left byte for byte as it
// was. Any other outcome exits non-zero.
//
//	go run ./examples/encryptedfile
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx := context.Background()
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()

	dir, err := os.MkdirTemp("", "tokenmgr-encryptedfile-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "credentials.enc")
	passphrase := []byte("correct horse battery staple")

	// newClient is what the program does at every start.
	newClient := func() (*tokenmgr.Client, error) {
		st, err := store.NewEncryptedFile(path, passphrase)
		if err != nil {
			return nil, err
		}
		return tokenmgr.New(tokenmgr.Config{
			Source: tokenmgr.ClientCredentials(&clientcredentials.Config{
				ClientID:     srv.ClientID,
				ClientSecret: srv.ClientSecret,
				TokenURL:     srv.TokenURL(),
			}),
			Store: st,
			Key:   "encryptedfile-example",
		})
	}

	// First run: nothing stored yet, so the Client fetches a token and
	// saves it to the file before using it.
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
	fmt.Printf("first run:  token requests %d, fetched %d, adopted from file %d\n",
		srv.TokenRequests.Load(), st1.Fetches, st1.StoreLoads)
	if st1.Fetches != 1 {
		return fmt.Errorf("first run fetched %d tokens, want 1", st1.Fetches)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("first run did not write the file: %w", err)
	}
	fmt.Printf("file:       %s, %d bytes, mode %v\n", filepath.Base(path), fi.Size(), fi.Mode().Perm())
	before, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if bytes.Contains(before, []byte(tok1.AccessToken)) {
		return errors.New("the access token is readable in the file")
	}
	fmt.Println("file:       the access token does not appear in it (encrypted)")

	// "Restart": a new Client on the same file adopts the stored token.
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
	fmt.Printf("second run: token requests %d, fetched %d, adopted from file %d, same token: %t\n",
		newRequests, st2.Fetches, st2.StoreLoads, tok2.AccessToken == tok1.AccessToken)
	if newRequests != 0 || st2.Fetches != 0 || st2.StoreLoads != 1 || tok2.AccessToken != tok1.AccessToken {
		return errors.New("the restarted Client did not adopt the stored token")
	}

	// A wrong passphrase is refused when the store is opened, with an error
	// naming the file, and the file is not touched.
	_, err = store.NewEncryptedFile(path, []byte("wrong passphrase"))
	fmt.Printf("wrong passphrase: %v\n", err)
	if !errors.Is(err, store.ErrWrongKey) {
		return fmt.Errorf("wrong passphrase: got %v, want an error matching store.ErrWrongKey", err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	fmt.Printf("wrong passphrase: file unchanged: %t\n", bytes.Equal(before, after))
	if !bytes.Equal(before, after) {
		return errors.New("the file changed after opening it with a wrong passphrase")
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
