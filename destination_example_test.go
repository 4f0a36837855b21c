package tokenmgr_test

import (
	"fmt"
	"net/url"

	"github.com/tokenmgr/tokenmgr"
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
		if err := tokenmgr.CheckDestination(u, allowed, false); err != nil {
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
