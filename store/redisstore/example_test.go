package redisstore_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/redis/go-redis/v9"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/store/redisstore"
)

// Every replica of a service opens the same Redis with the same
// passphrase; one of them refreshes the token, the others adopt it.
func ExampleNew() {
	ctx := context.Background()
	opts, err := redisstore.ParseURL(os.Getenv("REDIS_URL")) // e.g. rediss://app:password@redis.internal:6380/0
	if err != nil {
		log.Fatal(err)
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()
	st, err := redisstore.New(ctx, rdb, redisstore.Options{Passphrase: []byte(os.Getenv("FLEET_PASSPHRASE"))})
	if err != nil {
		log.Fatal(err) // no passphrase, or not the one the fleet's tokens were written with
	}
	c, err := tokenmgr.New(tokenmgr.Config{
		Source: tokenmgr.ClientCredentials(&clientcredentials.Config{
			ClientID: os.Getenv("CLIENT_ID"), ClientSecret: os.Getenv("CLIENT_SECRET"), TokenURL: "https://auth.example.com/oauth/token",
		}),
		Store: st,
		Key:   "billing-api",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	resp, err := c.HTTPClient().Get("https://billing.example.com/v1/invoices")
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
}

// From the environment: TOKENMGR_STORE=redis, TOKENMGR_REDIS_URL and
// TOKENMGR_STORE_PASSPHRASE, once this package is imported.
func ExampleParseURL() {
	opts, err := redisstore.ParseURL("rediss://app:password@redis.internal:6380/2")
	if err != nil {
		log.Fatal(err)
	}
	log.Println(opts.Addr, opts.DB, opts.TLSConfig != nil)
}

// A TOKENMGR_REDIS_URL names a single server, a Sentinel (master_name=) or
// a Cluster (addr= for the other nodes); NewClient makes the matching
// go-redis client, which New takes. Nothing is dialled yet.
func ExampleNewClient() {
	for _, url := range []string{
		"rediss://app:password@redis.internal:6380/0",
		"redis://sentinel-1:26379?master_name=tokens&addr=sentinel-2:26379",
		"rediss://app:password@node-1:6379?addr=node-2:6379&addr=node-3:6379",
	} {
		rdb, err := redisstore.NewClient(url)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%T\n", rdb)
		rdb.Close()
	}
	// Output:
	// *redis.Client
	// *redis.Client
	// *redis.ClusterClient
}
