package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/envconfig"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
)

var listCommand = &command{
	name:    "list",
	summary: "list the credentials in the store and whose each is (never a token)",
	help: `Lists the credentials held in the store: each name (the --key of the
other commands), what it holds (an OAuth token, an OAuth refresh token,
AWS credentials), its expiry, and the configuration that saved it (grant,
token URL and client ID, or AWS role; never a secret). Two set-ups that
share a store need a name each: tokenmgr refuses to overwrite another
configuration's credential.

Only the encrypted file (and memory) store can list its names: an OS
keyring has no portable way to enumerate its entries, and Redis keeps a
hash of each name, never the name. With those, "tokenmgr status --key
<name>" shows one credential.

It reads the store only: no network, and no TOKEN_URL/CLIENT_ID/
CLIENT_SECRET variables needed.

Exit status: 0 with the list (empty when nothing is stored); 1 when the
store cannot be opened, read or listed; 2 for a usage error.`,
	flags: func(fs *flag.FlagSet, o *options) {
		fs.BoolVar(&o.json, "json", false, "print JSON for scripts")
	},
	run: runList,
}

// listJSON is one credential of list --json.
type listJSON struct {
	Credential    string     `json:"credential"`
	Holds         string     `json:"holds,omitempty"`         // "AWS credentials", "an OAuth token", ...
	Configuration string     `json:"configuration,omitempty"` // the configuration that saved it
	Expiry        *time.Time `json:"expiry,omitempty"`
	Error         string     `json:"error,omitempty"` // why the record cannot be read
}

func runList(ctx context.Context, o *options, stdout, stderr io.Writer) int {
	env, err := envconfig.Read(o.lookup, envconfig.NeedStore)
	if err != nil {
		return fail(stderr, "list", err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	st, err := env.OpenStore(ctx)
	if err != nil {
		return failEnv(stderr, "list", err, env)
	}
	if c, ok := st.(io.Closer); ok {
		defer c.Close()
	}
	if st == nil {
		fmt.Fprintln(stdout, "no store configured (a static TOKENMGR_ACCESS_TOKEN); nothing stored")
		return exitOK
	}
	ls, ok := st.(store.Lister)
	if !ok {
		return fail(stderr, "list", fmt.Errorf("%s cannot list the names it holds (an OS keyring has no portable way to enumerate entries; Redis keeps a hash of each name); \"tokenmgr status --key <name>\" shows one", storeName(st)))
	}
	keys, err := ls.Keys(ctx)
	if err != nil {
		return failEnv(stderr, "list", err, env)
	}
	out := make([]listJSON, 0, len(keys))
	for _, k := range keys {
		item := listJSON{Credential: k}
		rec, err := record.Load(ctx, st, k)
		switch {
		case err != nil:
			item.Error = display.OneLine(err.Error())
		case rec != nil:
			item.Holds, item.Configuration = rec.Kind(), rec.Configuration()
			if !rec.Expiry.IsZero() {
				exp := rec.Expiry
				item.Expiry = &exp
			}
		}
		out = append(out, item)
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fail(stderr, "list", err)
		}
		return exitOK
	}
	if len(out) == 0 {
		fmt.Fprintf(stdout, "nothing stored in %s\n", storeName(st))
		return exitOK
	}
	now := time.Now()
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CREDENTIAL\tHOLDS\tEXPIRES\tCONFIGURATION")
	for _, it := range out {
		holds, exp, conf := it.Holds, "-", it.Configuration
		switch {
		case it.Error != "":
			holds, conf = "unreadable", it.Error
		case it.Expiry != nil:
			exp = display.Relative(*it.Expiry, now)
		}
		if conf == "" {
			conf = "(not recorded)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", display.OneLine(it.Credential), holds, exp, conf)
	}
	tw.Flush()
	return exitOK
}
