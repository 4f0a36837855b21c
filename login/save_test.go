package login

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
)

// A malformed record is replaced, as the Client replaces it.
func TestSaveReplacesMalformedRecord(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	if err := st.Save(ctx, "default", []byte("not a record")); err != nil {
		t.Fatal(err)
	}
	c := Config{Issuer: "https://id.example.com", ClientID: "cli", Store: st}
	if err := c.save(ctx, &oauth2.Token{AccessToken: "mine"}, time.Now()); err != nil {
		t.Fatal(err)
	}
	r, err := record.Load(ctx, st, "default")
	if err != nil || r == nil || r.AccessToken != "mine" {
		t.Fatalf("the sign-in was not saved over a malformed record: %v, %v", r, err)
	}
}

// A sign-in does not replace what another configuration saved under its
// key, as the Client does not (ErrKeyInUse); its own earlier sign-in, or
// a record that names no configuration, it replaces.
func TestSaveKeepsAnotherConfigurationsCredential(t *testing.T) {
	ctx := context.Background()
	cfg := Config{Issuer: "https://id.example.com", ClientID: "cli"}
	for name, tc := range map[string]struct {
		source  string
		refused bool
	}{
		"another configuration": {"0123456789abcdef01234567", true},
		"this sign-in":          {cfg.fingerprint(), false},
		"no configuration":      {"", false},
	} {
		t.Run(name, func(t *testing.T) {
			st := store.NewMemory()
			r := record.FromToken(&oauth2.Token{AccessToken: "theirs", RefreshToken: "their-refresh"}, time.Now())
			r.Source = tc.source
			before, err := r.Encode()
			if err != nil {
				t.Fatal(err)
			}
			if err := st.Save(ctx, "default", before); err != nil {
				t.Fatal(err)
			}
			c := cfg
			c.Store = st
			err = c.save(ctx, &oauth2.Token{AccessToken: "mine", RefreshToken: "my-refresh"}, time.Now())
			after, lerr := st.Load(ctx, "default")
			if lerr != nil {
				t.Fatal(lerr)
			}
			if tc.refused {
				if !errors.Is(err, tokenmgr.ErrKeyInUse) {
					t.Fatalf("save over another configuration's credential: err %v, want ErrKeyInUse", err)
				}
				if !bytes.Equal(after, before) {
					t.Fatal("another configuration's credential was overwritten")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(after, before) {
				t.Fatal("the sign-in was not saved")
			}
		})
	}
}
