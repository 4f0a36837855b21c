package awsdiag_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/tokenmgr/tokenmgr/awscreds"
	"github.com/tokenmgr/tokenmgr/awscreds/ststest"
	"github.com/tokenmgr/tokenmgr/diagnose/awsdiag"
)

// Explain says what an STS error comes down to.
func ExampleExplain() {
	srv := ststest.NewServer()
	defer srv.Close()
	srv.FailNext(ststest.ErrInvalidIdentityToken)
	dir, err := os.MkdirTemp("", "awsdiag-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("web-identity-token"), 0o600); err != nil {
		log.Fatal(err)
	}
	p, err := awscreds.New(awscreds.Config{
		RoleARN: "arn:aws:iam::123456789012:role/app", WebIdentityTokenFile: file,
		Region: "eu-west-1", STSEndpoint: srv.URL,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	_, err = p.Retrieve(context.Background())
	x := awsdiag.Explain(err, 0)
	fmt.Println(x.Cause, x.Code)
	// Output: wrong_audience InvalidIdentityToken
}
