package awscreds_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/tokenmgr/tokenmgr/awscreds"
	"github.com/tokenmgr/tokenmgr/awscreds/ststest"
)

// newProvider is a Provider against an in-process STS, with the web
// identity token in a file as EKS IRSA writes it.
// Close it to remove the file too.
func newProvider(srv *ststest.Server) *exampleProvider {
	dir, err := os.MkdirTemp("", "awscreds-example")
	if err != nil {
		log.Fatal(err)
	}
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("web-identity-token"), 0o600); err != nil {
		log.Fatal(err)
	}
	p, err := awscreds.New(awscreds.Config{
		RoleARN:              "arn:aws:iam::123456789012:role/app",
		WebIdentityTokenFile: file,
		Region:               "eu-west-1",
		STSEndpoint:          srv.URL, // in production leave it empty: the regional endpoint
	})
	if err != nil {
		log.Fatal(err)
	}
	return &exampleProvider{p, dir}
}

type exampleProvider struct {
	*awscreds.Provider
	dir string
}

func (e *exampleProvider) Close() error {
	defer os.RemoveAll(e.dir)
	return e.Provider.Close()
}

// Configure makes every client made from an aws.Config use the Provider
// and replay once, with fresh credentials, a call rejected for them.
func ExampleProvider_Configure() {
	srv := ststest.NewServer()
	defer srv.Close()
	p := newProvider(srv)
	defer p.Close()

	cfg := aws.Config{Region: "eu-west-1", BaseEndpoint: aws.String(srv.URL)} // usually config.LoadDefaultConfig(ctx)
	p.Configure(&cfg)
	client := sts.NewFromConfig(cfg)

	srv.RevokeAll() // the session is revoked after the first call
	for range 2 {
		out, err := client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(aws.ToString(out.Account))
		srv.RevokeAll()
	}
	fmt.Println("STS calls:", srv.AssumeCalls(), "replays:", p.Stats().Replays)
	// Output:
	// 123456789012
	// 123456789012
	// STS calls: 2 replays: 1
}

// Transport signs plain http.Client requests with SigV4.
func ExampleProvider_Transport() {
	srv := ststest.NewServer()
	defer srv.Close()
	p := newProvider(srv)
	defer p.Close()

	hc := &http.Client{Transport: p.Transport(nil, "execute-api", "eu-west-1")}
	resp, err := hc.Post(srv.URL+"/items", "application/json", strings.NewReader(`{"name":"widget"}`))
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()
	fmt.Println(resp.Status, "signature verified:", srv.SignedOK() == 1)
	// Output: 200 OK signature verified: true
}
