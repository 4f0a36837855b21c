package ststest

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The example of the AWS documentation ("Create a signed AWS API
// request", IAM ListUsers), checked by Verify.
func TestVerifyDocumentationExample(t *testing.T) {
	r, err := http.NewRequest("GET", "https://iam.amazonaws.com/?Action=ListUsers&Version=2010-05-08", nil)
	require.NoError(t, err)
	r.Host = "iam.amazonaws.com"
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	r.Header.Set("X-Amz-Date", "20150830T123600Z")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")
	a, err := ParseAuthorization(r.Header.Get("Authorization"))
	require.NoError(t, err)
	assert.Equal(t, "AKIDEXAMPLE", a.AccessKeyID)
	assert.Equal(t, "iam", a.Service)
	now := time.Date(2015, 8, 30, 12, 40, 0, 0, time.UTC)
	require.NoError(t, Verify(r, nil, a, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", now))
	assert.Error(t, Verify(r, nil, a, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEX", now))
	err = Verify(r, nil, a, "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", now.Add(20*time.Minute))
	require.Error(t, err)
	assert.Equal(t, "RequestExpired", err.(*Error).Code)
}

// Requests signed by another signer (the SDK's) verify, and any change to
// what is signed breaks them.
func TestVerifyTamper(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "ASIAX", SecretAccessKey: "secret", SessionToken: "tok"}
	now := time.Now()
	sign := func(service, method, url, body string) (*http.Request, []byte) {
		r, err := http.NewRequest(method, url, strings.NewReader(body))
		require.NoError(t, err)
		r.Header.Set("X-Custom", "  a   b ")
		sum := hashHex([]byte(body))
		if service == "s3" {
			r.Header.Set("X-Amz-Content-Sha256", sum)
		}
		s := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = service == "s3" })
		require.NoError(t, s.SignHTTP(context.Background(), creds, r, sum, service, "eu-west-1", now))
		r.Host = r.URL.Host
		return r, []byte(body)
	}
	for _, svc := range []string{"sts", "s3", "execute-api"} {
		t.Run(svc, func(t *testing.T) {
			r, body := sign(svc, "POST", "https://svc.example.com/a%20b/c?z=1&a=2&a=1&e=", "payload")
			a, err := ParseAuthorization(r.Header.Get("Authorization"))
			require.NoError(t, err)
			require.NoError(t, Verify(r, body, a, "secret", now))
			assert.Error(t, Verify(r, []byte("payloaX"), a, "secret", now), "body")
			assert.Error(t, Verify(r, body, a, "secreX", now), "secret")
			r2 := r.Clone(context.Background())
			r2.URL.RawQuery = "z=1&a=2"
			assert.Error(t, Verify(r2, body, a, "secret", now), "query")
			r2 = r.Clone(context.Background())
			r2.Header.Set("X-Amz-Security-Token", "other")
			assert.Error(t, Verify(r2, body, a, "secret", now), "token header")
			r2 = r.Clone(context.Background())
			r2.Method = "PUT"
			assert.Error(t, Verify(r2, body, a, "secret", now), "method")
			r2 = r.Clone(context.Background())
			r2.Host = "other.example.com"
			assert.Error(t, Verify(r2, body, a, "secret", now), "host")
		})
	}
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7")
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e, SignedHeaders=, Signature=")
	f.Add("Bearer x")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := ParseAuthorization(h)
		if err != nil {
			require.Nil(t, a, "value and error")
			// The messages are fixed: however long the header, none quotes it.
			require.LessOrEqual(t, len(err.Error()), 120, "the error quotes the header: %v", err)
			return
		}
		require.NotEmpty(t, a.AccessKeyID, "accepted an incomplete header: %+v", a)
		require.NotEmpty(t, a.Service, "accepted an incomplete header: %+v", a)
		require.Len(t, a.Signature, 64, "accepted an incomplete header: %+v", a)
		require.NotEmpty(t, a.SignedHeaders, "accepted an incomplete header: %+v", a)
		// Verify never panics on what parsed.
		r, _ := http.NewRequest("GET", "https://x.example.com/", nil)
		r.Header.Set("X-Amz-Date", a.Date+"T000000Z")
		_ = Verify(r, nil, a, "k", time.Now())
	})
}
