// Command login shows a person signing in with package login, offline:
// an OpenID provider runs in-process (package logintest, zitadel's op),
// its user approving at once, and a stand-in for the browser follows the
// sign-in to the loopback redirect. Then a Client built with
// login.NewClient serves the saved sign-in, and after the issuer revokes
// it, says to run "tokenmgr login".
//
// With a real issuer the same program sets Issuer and ClientID to it and
// leaves OpenURL unset (the system browser opens), or calls login.Device.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/login"
	"github.com/tokenmgr/tokenmgr/login/logintest"
	"github.com/tokenmgr/tokenmgr/store"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx := context.Background()
	idp, err := logintest.Start(logintest.Options{})
	if err != nil {
		return err
	}
	defer idp.Close()

	cfg := login.Config{
		Issuer:   idp.Issuer, // https in real life; http is allowed to loopback only
		ClientID: idp.PublicClientID,
		OpenURL:  idp.Browse, // the person, approving at once; unset: the system browser
		Store:    store.NewMemory(),
		Prompt:   os.Stderr,
	}
	if _, err := login.Browser(ctx, cfg); err != nil {
		return err
	}
	fmt.Println("signed in at", idp.Issuer)

	c, err := login.NewClient(ctx, cfg)
	if err != nil {
		return err
	}
	defer c.Close()
	tok, err := c.Token(ctx)
	if err != nil {
		return err
	}
	fmt.Println("the Client serves the saved sign-in, valid until", tok.Expiry.Format("15:04:05"))

	idp.RevokeAll() // signed out elsewhere
	c.Invalidate(tok)
	_, err = c.Token(ctx)
	if !errors.Is(err, tokenmgr.ErrLoginRequired) {
		return fmt.Errorf("want ErrLoginRequired, got %v", err)
	}
	fmt.Println("after a sign-out elsewhere:", err)
	return nil
}
