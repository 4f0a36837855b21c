package classify_test

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/tokenmgr/tokenmgr/classify"
)

// A tool checks, by the transport's own rule, whether a token would be
// sent to a URL before it tries.
func ExampleCheckDestination() {
	allowed := []string{"api.example.com", "*.internal.example"}
	for _, raw := range []string{
		"https://api.example.com/v1",
		"https://api.example.com./v1", // a trailing dot is another host name
		"https://db.internal.example/",
		"http://api.example.com/v1",
	} {
		u, _ := url.Parse(raw)
		if err := classify.CheckDestination(u, allowed, false); err != nil {
			fmt.Println("no: ", err)
			continue
		}
		fmt.Println("yes:", raw)
	}
	// Output:
	// yes: https://api.example.com/v1
	// no:  tokenmgr: host not in AllowedHosts: api.example.com.
	// yes: https://db.internal.example/
	// no:  tokenmgr: refusing to send a token over plain http to api.example.com (use https, or set AllowInsecureHTTP)
}

// Classify tells a rejected token from other errors by the error code a
// response carries, in whatever shape the service sends it.
func ExampleClassifier_Classify() {
	var cl classify.Classifier

	// AWS STS: 403 with an XML error document.
	sts := []byte(`<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error>
    <Type>Sender</Type>
    <Code>InvalidClientTokenId</Code>
    <Message>The security token included in the request is invalid</Message>
  </Error>
  <RequestId>16fc956c-311e-4199-bee1-1680236e9698</RequestId>
</ErrorResponse>`)
	v := cl.Classify(http.StatusForbidden, http.Header{"Content-Type": {"text/xml"}}, sts, true)
	fmt.Println(v.Kind, v.Code, v.Source, "retry:", v.Retry())

	// RFC 6750: the token is fine but lacks a scope.
	h := http.Header{}
	h.Set("WWW-Authenticate", `Bearer realm="example", error="insufficient_scope", scope="items:write"`)
	v = cl.Classify(http.StatusForbidden, h, nil, true)
	fmt.Println(v.Kind, v.Code, v.Source, "retry:", v.Retry())
	// Output:
	// invalid_token InvalidClientTokenId xml retry: true
	// insufficient_scope insufficient_scope www-authenticate retry: false
}
