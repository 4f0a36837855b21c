package oteltokenmgr_test

import (
	"context"
	"fmt"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/oteltokenmgr"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// Instrument a Config before New: the Client's refreshes, rejections and
// store errors are reported to the global MeterProvider and
// TracerProvider (a program sets them with otel.SetMeterProvider and
// otel.SetTracerProvider).
func ExampleInstrument() {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()

	cfg := tokenmgr.Config{Source: tokenmgr.ClientCredentials(&clientcredentials.Config{
		ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, TokenURL: srv.TokenURL(),
	})}
	oteltokenmgr.Instrument(&cfg)
	c, err := tokenmgr.New(cfg)
	if err != nil {
		panic(err)
	}
	defer c.Close()
	if _, err := c.Token(context.Background()); err != nil {
		panic(err)
	}
	fmt.Println("refreshed:", c.Stats().Fetches)
	// Output: refreshed: 1
}
