package redact_test

import (
	"fmt"

	"github.com/tokenmgr/tokenmgr/redact"
)

// A Redactor blanks a client secret out of text in every encoding a token
// request carries it in: as is, URL-encoded, and inside the base64 of an
// HTTP Basic credential.
func ExampleRedactor() {
	var r redact.Redactor
	r.AddClient("my-client", "s3cret/+value")
	fmt.Println(r.Redact("form body: client_secret=s3cret%2F%2Bvalue"))
	fmt.Println(r.Redact("header: Authorization: Basic bXktY2xpZW50OnMzY3JldCUyRiUyQnZhbHVl"))
	// Output:
	// form body: client_secret=[REDACTED]
	// header: Authorization: Basic [REDACTED]
}
