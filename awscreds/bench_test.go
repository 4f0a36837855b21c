package awscreds

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// okTransport answers every request 200 without a network, so the
// benchmarks measure signing and the transport, not I/O.
type okTransport struct{}

func (okTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
}

var benchBody = bytes.Repeat([]byte("x"), 1024)

func benchRequest(b *testing.B, withBody bool) *http.Request {
	var body io.Reader
	if withBody {
		body = bytes.NewReader(benchBody)
	}
	req, err := http.NewRequest("POST", "https://dynamodb.eu-west-1.amazonaws.com/?a=1", body)
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.GetItem")
	return req
}

// BenchmarkSignedRequest compares the signed hot path (credentials in
// service) of Provider.Transport with aws-sdk-go-v2 signing the same
// request itself: credentials from its CredentialsCache, payload hash,
// v4.Signer.SignHTTP on a clone, then the same base transport.
func BenchmarkSignedRequest(b *testing.B) {
	for _, withBody := range []bool{false, true} {
		name := "empty"
		if withBody {
			name = "1KiB"
		}
		b.Run("tokenmgr/"+name, func(b *testing.B) {
			f := newFixture(b, nil, nil)
			if _, err := f.p.Retrieve(context.Background()); err != nil {
				b.Fatal(err)
			}
			rt := f.p.Transport(okTransport{}, "dynamodb", "eu-west-1")
			req := benchRequest(b, withBody)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				resp, err := rt.RoundTrip(req)
				if err != nil || resp.StatusCode != 200 {
					b.Fatal(err)
				}
			}
		})
		b.Run("aws-sdk-go-v2/"+name, func(b *testing.B) {
			cache := aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("ASIAEXAMPLE", "secret", "session-token"))
			signer := v4.NewSigner()
			var rt http.RoundTripper = okTransport{}
			req := benchRequest(b, withBody)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				creds, err := cache.Retrieve(req.Context())
				if err != nil {
					b.Fatal(err)
				}
				r2 := req.Clone(req.Context())
				hash := emptyHash
				if req.GetBody != nil {
					body, _ := req.GetBody()
					h := sha256.New()
					io.Copy(h, body)
					hash = hex.EncodeToString(h.Sum(nil))
					r2.Body, _ = req.GetBody()
				}
				if err := signer.SignHTTP(req.Context(), creds, r2, hash, "dynamodb", "eu-west-1", time.Now()); err != nil {
					b.Fatal(err)
				}
				resp, err := rt.RoundTrip(r2)
				if err != nil || resp.StatusCode != 200 {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRetrieve compares Provider.Retrieve on credentials in service
// with aws-sdk-go-v2's CredentialsCache.Retrieve, what every SDK call
// does first.
func BenchmarkRetrieve(b *testing.B) {
	ctx := context.Background()
	b.Run("tokenmgr", func(b *testing.B) {
		f := newFixture(b, nil, nil)
		if _, err := f.p.Retrieve(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := f.p.Retrieve(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("aws-sdk-go-v2", func(b *testing.B) {
		cache := aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("ASIAEXAMPLE", "secret", "session-token"))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cache.Retrieve(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
