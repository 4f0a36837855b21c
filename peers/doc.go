// Package peers holds no code. Its tests and benchmarks compare tokenmgr
// side by side with the libraries a Go service would otherwise use,
// golang.org/x/oauth2 and cloud.google.com/go/auth, and awscreds with
// aws-sdk-go-v2's own credentials cache, web identity provider and
// signer, in the same run.
//
// It is a module of its own so that those peers, and what they bring in
// (gRPC, OpenTelemetry, Google APIs), stay out of the module graph of a
// program that imports tokenmgr (or awscreds).
//
//	cd peers && go test -run '^$' -bench . -benchmem -count 5 | tee new.txt
//	benchstat new.txt
package peers
