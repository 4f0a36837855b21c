package peers_test

// AWS: awscreds side by side with aws-sdk-go-v2's own ways, against the
// in-process STS of awscreds/ststest (which verifies every signature).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/awscreds"
	"github.com/tokenmgr/tokenmgr/awscreds/ststest"
)

const awsRole = "arn:aws:iam::123456789012:role/app"

// awsSetup starts an STS, writes a web identity token file and returns a
// Provider using them.
func awsSetup(tb testing.TB) (*ststest.Server, string, *awscreds.Provider) {
	tb.Helper()
	srv := ststest.NewServer()
	tb.Cleanup(srv.Close)
	file := filepath.Join(tb.TempDir(), "token")
	require.NoError(tb, os.WriteFile(file, []byte("web-identity-token"), 0o600))
	p, err := awscreds.New(awscreds.Config{
		RoleARN: awsRole, WebIdentityTokenFile: file, Region: "us-east-1",
		STSEndpoint: srv.URL, HTTPClient: srv.Client(),
	})
	require.NoError(tb, err)
	tb.Cleanup(func() { p.Close() })
	return srv, file, p
}

func awsConfig(srv *ststest.Server) aws.Config {
	return aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), HTTPClient: srv.Client()}
}

func callerIdentity(ctx context.Context, cfg aws.Config) error {
	_, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	return err
}

// Side by side, in one run, against one STS: the SDK's own web identity
// provider behind its aws.CredentialsCache keeps failing after the
// session is revoked (until the cached credentials expire); Configure
// recovers each call with one STS call and one replay.
func TestAWSRevocationPlainCacheFailsConfigureRecovers(t *testing.T) {
	srv, file, p := awsSetup(t)
	ctx := t.Context()

	plain := awsConfig(srv)
	plain.Credentials = aws.NewCredentialsCache(stscreds.NewWebIdentityRoleProvider(
		sts.NewFromConfig(awsConfig(srv)), awsRole, stscreds.IdentityTokenFile(file)))
	ours := awsConfig(srv)
	p.Configure(&ours)

	require.NoError(t, callerIdentity(ctx, plain))
	require.NoError(t, callerIdentity(ctx, ours))
	require.EqualValues(t, 2, srv.AssumeCalls())

	srv.RevokeAll()

	for range 2 {
		err := callerIdentity(ctx, plain)
		var ae smithy.APIError
		require.ErrorAs(t, err, &ae, "the SDK's cache recovers by itself")
		assert.Equal(t, "InvalidClientTokenId", ae.ErrorCode())
	}
	assert.EqualValues(t, 2, srv.AssumeCalls(), "the SDK's cache does not ask STS again")

	rejectedBefore := srv.Rejected()
	require.NoError(t, callerIdentity(ctx, ours))
	assert.EqualValues(t, 3, srv.AssumeCalls(), "one STS call")
	assert.EqualValues(t, 1, p.Stats().Replays, "one replay")
	assert.EqualValues(t, rejectedBefore+1, srv.Rejected())

	// The next call uses the fresh credentials straight away.
	require.NoError(t, callerIdentity(ctx, ours))
	assert.EqualValues(t, 3, srv.AssumeCalls())
	assert.EqualValues(t, 1, p.Stats().Replays)
}

// okTransport answers every request 200 without a network, so the
// benchmarks measure signing and the transport, not I/O.
type okTransport struct{}

func (okTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}, Request: r}, nil
}

var awsBenchBody = bytes.Repeat([]byte("x"), 1024)

// awsBenchBase is the base transport of both sides. A package variable,
// so that the compiler cannot inline a call to it and keep its response
// on the stack, which no real transport allows: it did for the SDK's side
// when that side held okTransport{} in a local variable (2 allocations
// and 240 B per request that its side then did not count).
var awsBenchBase http.RoundTripper = okTransport{}

func awsBenchRequest(b *testing.B, withBody bool) *http.Request {
	var body io.Reader
	if withBody {
		body = bytes.NewReader(awsBenchBody)
	}
	req, err := http.NewRequest("POST", "https://dynamodb.eu-west-1.amazonaws.com/?a=1", body)
	require.NoError(b, err)
	req.Header.Set("Content-Type", "application/x-amz-json-1.0")
	req.Header.Set("X-Amz-Target", "DynamoDB_20120810.GetItem")
	return req
}

// BenchmarkAWSSignedRequest compares the signed hot path (credentials in
// service) of awscreds' Provider.Transport with aws-sdk-go-v2 signing the
// same request itself: credentials from its CredentialsCache, payload
// hash, v4.Signer.SignHTTP on a clone, then the same base transport.
func BenchmarkAWSSignedRequest(b *testing.B) {
	for _, withBody := range []bool{false, true} {
		name := "empty"
		if withBody {
			name = "1KiB"
		}
		b.Run("tokenmgr/"+name, func(b *testing.B) {
			_, _, p := awsSetup(b)
			_, err := p.Retrieve(context.Background())
			require.NoError(b, err)
			rt := p.Transport(awsBenchBase, "dynamodb", "eu-west-1")
			req := awsBenchRequest(b, withBody)
			b.ReportAllocs()
			for b.Loop() {
				resp, err := rt.RoundTrip(req)
				if err != nil || resp.StatusCode != 200 {
					b.Fatal(err)
				}
			}
		})
		b.Run("aws-sdk-go-v2/"+name, func(b *testing.B) {
			// The same credentials as tokenmgr's side: the session
			// token is signed into every request, so its length counts.
			_, _, p := awsSetup(b)
			c, err := p.Retrieve(context.Background())
			require.NoError(b, err)
			cache := aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken))
			signer := v4.NewSigner()
			rt := awsBenchBase
			req := awsBenchRequest(b, withBody)
			b.ReportAllocs()
			for b.Loop() {
				creds, err := cache.Retrieve(req.Context())
				if err != nil {
					b.Fatal(err)
				}
				r2 := req.Clone(req.Context())
				hash := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
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

// BenchmarkAWSRetrieve compares Provider.Retrieve on credentials in
// service with aws-sdk-go-v2's CredentialsCache.Retrieve, what every SDK
// call does first.
func BenchmarkAWSRetrieve(b *testing.B) {
	ctx := context.Background()
	b.Run("tokenmgr", func(b *testing.B) {
		_, _, p := awsSetup(b)
		_, err := p.Retrieve(ctx)
		require.NoError(b, err)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.Retrieve(ctx); err != nil {
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
	// What stscreds hands its cache: credentials that expire. The cache
	// then reads the clock on every Retrieve, as tokenmgr must; static
	// credentials above never expire and skip it.
	b.Run("aws-sdk-go-v2/expiring", func(b *testing.B) {
		cache := aws.NewCredentialsCache(expiringProvider{})
		b.ReportAllocs()
		for b.Loop() {
			if _, err := cache.Retrieve(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// expiringProvider returns temporary credentials valid for an hour, as
// stscreds' web identity provider does.
type expiringProvider struct{}

func (expiringProvider) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{
		AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: "secret", SessionToken: "session-token",
		CanExpire: true, Expires: time.Now().Add(time.Hour),
	}, nil
}
