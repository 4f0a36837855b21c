package awscreds

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/awscreds/ststest"
)

// The side-by-side run against the SDK's own web identity provider and
// CredentialsCache is in the peers module
// (TestAWSRevocationPlainCacheFailsConfigureRecovers).

// Configure recovers from a revocation with one STS call and one replay.
func TestConfigureRecoversFromRevocation(t *testing.T) {
	f := newFixture(t, nil, nil)
	cfg := awsConfig(f.srv)
	f.p.Configure(&cfg)
	_, err := callerIdentity(t.Context(), cfg)
	require.NoError(t, err)
	f.srv.RevokeAll()
	rejectedBefore := f.srv.Rejected()
	out, err := callerIdentity(t.Context(), cfg)
	require.NoError(t, err)
	assert.Equal(t, "123456789012", aws.ToString(out.Account))
	assert.EqualValues(t, 2, f.srv.AssumeCalls(), "one STS call")
	assert.EqualValues(t, 1, f.p.Stats().Replays, "one replay")
	assert.EqualValues(t, rejectedBefore+1, f.srv.Rejected())
	assert.EqualValues(t, 1, f.p.Stats().Invalidations)
	_, err = callerIdentity(t.Context(), cfg)
	require.NoError(t, err)
	assert.EqualValues(t, 2, f.srv.AssumeCalls())
}

// A session the service sees as expired early (clock skew, or a
// revocation answered so) is replaced the same way.
func TestConfigureRecoversFromExpiredToken(t *testing.T) {
	f := newFixture(t, nil, nil)
	cfg := awsConfig(f.srv)
	f.p.Configure(&cfg)
	_, err := callerIdentity(t.Context(), cfg)
	require.NoError(t, err)
	f.srv.ExpireAll()
	_, err = callerIdentity(t.Context(), cfg)
	require.NoError(t, err)
	assert.EqualValues(t, 2, f.srv.AssumeCalls())
	assert.EqualValues(t, 1, f.p.Stats().Replays)
}

// Many calls rejected at once cost one STS call between them: the
// rejected credentials are dropped by compare-and-swap, and the refresh is
// shared.
func TestConfigureConcurrentRejectionsOneRefresh(t *testing.T) {
	f := newFixture(t, nil, nil)
	cfg := awsConfig(f.srv)
	f.p.Configure(&cfg)
	client := sts.NewFromConfig(cfg)
	_, err := client.GetCallerIdentity(t.Context(), &sts.GetCallerIdentityInput{})
	require.NoError(t, err)
	f.srv.RevokeAll()
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.EqualValues(t, 2, f.srv.AssumeCalls())
	assert.LessOrEqual(t, f.p.Stats().Replays, int64(16))
	assert.EqualValues(t, 1, f.p.Stats().Invalidations)
}

// When even fresh credentials are rejected (a role in the wrong account),
// a call is replayed once, and then rejections are returned as they are
// for a while: not one STS call per request.
func TestConfigureDampsWhenFreshCredentialsRejected(t *testing.T) {
	f := newFixture(t, nil, nil)
	cfg := awsConfig(f.srv)
	f.p.Configure(&cfg)
	f.srv.RejectAll(true)
	for range 10 {
		_, err := callerIdentity(t.Context(), cfg)
		var ae smithy.APIError
		require.ErrorAs(t, err, &ae)
		assert.Equal(t, "InvalidClientTokenId", ae.ErrorCode())
	}
	assert.EqualValues(t, 2, f.srv.AssumeCalls(), "the first credentials and one replacement")
	assert.EqualValues(t, 1, f.p.Stats().Replays)
	assert.EqualValues(t, 11, f.srv.Rejected(), "10 calls and one replay")
	assert.Contains(t, f.logs.String(), "rejected too")
}

// Errors that say nothing of the credentials are not replayed, and the
// SDK's own retries are not multiplied.
func TestConfigureLeavesOtherErrorsAlone(t *testing.T) {
	f := newFixture(t, nil, nil)
	cfg := awsConfig(f.srv)
	f.p.Configure(&cfg)
	cfg.BaseEndpoint = aws.String(f.srv.URL + "/nowhere")
	f.p.Configure(&cfg) // twice: one middleware all the same
	_, err := callerIdentity(t.Context(), cfg)
	require.NoError(t, err) // the test server serves any path
	f.srv.RejectAll(true)
	_, err = callerIdentity(t.Context(), cfg)
	require.Error(t, err)
	assert.EqualValues(t, 1, f.p.Stats().Replays, "one middleware, one replay")
}

// unseekableBody makes every call's body a stream that cannot be rewound
// (an S3 PutObject from a pipe), signed UNSIGNED-PAYLOAD as the SDK needs
// for one.
func unseekableBody(stack *middleware.Stack) error {
	if err := v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware(stack); err != nil {
		return err
	}
	if err := v4.AddContentSHA256HeaderMiddleware(stack); err != nil {
		return err
	}
	return stack.Build.Add(middleware.BuildMiddlewareFunc("unseekable", func(ctx context.Context, in middleware.BuildInput, next middleware.BuildHandler) (
		middleware.BuildOutput, middleware.Metadata, error,
	) {
		r := in.Request.(*smithyhttp.Request)
		b, err := io.ReadAll(r.GetStream())
		if err != nil {
			return middleware.BuildOutput{}, middleware.Metadata{}, err
		}
		if in.Request, err = r.SetStream(io.MultiReader(bytes.NewReader(b))); err != nil {
			return middleware.BuildOutput{}, middleware.Metadata{}, err
		}
		return next.HandleBuild(ctx, in)
	}), middleware.After)
}

// An endpoint that rejects every credential costs a handful of STS calls
// however many calls reach it, whether or not their bodies can be
// rewound: the rejection is damped before the body is looked at. Before,
// a call whose body could not be rewound dropped the credentials and
// returned before any damping: 20 calls made 20 AssumeRoleWithWebIdentity
// calls (2 with a rewindable body).
func TestConfigureUnrewindableBodyRejectionsDamped(t *testing.T) {
	for _, unseekable := range []bool{false, true} {
		t.Run(fmt.Sprintf("unseekable=%v", unseekable), func(t *testing.T) {
			f := newFixture(t, nil, nil)
			other := ststest.NewServer() // knows none of f.srv's sessions: rejects them all
			t.Cleanup(other.Close)
			cfg := awsConfig(other)
			f.p.Configure(&cfg)
			if unseekable {
				cfg.APIOptions = append(cfg.APIOptions, unseekableBody)
			}
			for range 20 {
				_, err := callerIdentity(t.Context(), cfg)
				var ae smithy.APIError
				require.ErrorAs(t, err, &ae)
				require.Equal(t, "InvalidClientTokenId", ae.ErrorCode())
			}
			t.Logf("STS calls for 20 rejected calls: %d", f.srv.AssumeCalls())
			assert.LessOrEqual(t, f.srv.AssumeCalls(), int64(3), "a handful of STS calls, not one per call")
			assert.GreaterOrEqual(t, other.Rejected(), int64(20))
		})
	}
}

// Damping is per host: an endpoint that rejects every credential (an
// opt-in region not enabled) does not stop refresh-and-replay on another
// host. Before, the damping was Provider-wide: a revocation seen by
// another service was passed on as an error for up to 30 s.
func TestConfigureDampingIsPerHost(t *testing.T) {
	f := newFixture(t, nil, nil)
	other := ststest.NewServer()
	t.Cleanup(other.Close)
	bad := awsConfig(other)
	f.p.Configure(&bad)
	for range 5 {
		_, err := callerIdentity(t.Context(), bad)
		require.Error(t, err)
	}
	require.Contains(t, f.logs.String(), "rejected too", "the rejecting host is damped")
	good := awsConfig(f.srv) // another host: localhost, not 127.0.0.1
	good.BaseEndpoint = aws.String(strings.Replace(f.srv.URL, "127.0.0.1", "localhost", 1))
	f.p.Configure(&good)
	f.srv.RevokeAll()
	calls := f.srv.AssumeCalls()
	out, err := callerIdentity(t.Context(), good)
	require.NoError(t, err, "the healthy host's revoked credentials are replaced and the call replayed")
	assert.Equal(t, ststest.Account, aws.ToString(out.Account))
	assert.Equal(t, calls+1, f.srv.AssumeCalls())
}

// holdingClient holds the next request it is armed for until release is
// closed, telling arrived.
type holdingClient struct {
	hc               *http.Client
	armed            atomic.Bool
	arrived, release chan struct{}
}

func (h *holdingClient) Do(r *http.Request) (*http.Response, error) {
	if h.armed.CompareAndSwap(true, false) {
		close(h.arrived)
		<-h.release
	}
	return h.hc.Do(r)
}

// The late rejection of credentials already replaced (a call that was in
// flight) does not make their replacement "fresh credentials rejected
// too" when the replacement was handed out before it, outside Configure
// (by Retrieve, or signed by Transport): its rejection is a revocation
// like the other's, and the next call replaces it rather than be damped.
func TestConfigureLateRejectionDoesNotDampEarlierCredentials(t *testing.T) {
	for name, handOut := range map[string]func(t *testing.T, f *fixture) (accessKeyID string){
		"Retrieve": func(t *testing.T, f *fixture) string {
			a, err := f.p.Retrieve(t.Context())
			require.NoError(t, err)
			return a.AccessKeyID
		},
		"Transport": func(t *testing.T, f *fixture) string {
			hc := &http.Client{Transport: f.p.Transport(f.srv.Client().Transport, "execute-api", "eu-west-1")}
			resp, err := hc.Get(f.srv.URL + "/things")
			require.NoError(t, err)
			return readEcho(t, resp).AccessKeyID
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			hc := &holdingClient{hc: f.srv.Client(), arrived: make(chan struct{}), release: make(chan struct{})}
			cfg := awsConfig(f.srv)
			cfg.HTTPClient = hc
			f.p.Configure(&cfg)
			z, err := f.p.Retrieve(t.Context())
			require.NoError(t, err)

			hc.armed.Store(true)
			late := make(chan error, 1)
			go func() { _, err := callerIdentity(context.Background(), cfg); late <- err }()
			<-hc.arrived // signed with z, not yet sent
			f.p.Invalidate(z)
			a := handOut(t, f)
			require.NotEqual(t, z.AccessKeyID, a)
			f.srv.Revoke(z.AccessKeyID)
			f.srv.Revoke(a)
			close(hc.release)
			require.Error(t, <-late, "z rejected, then a in the replay")
			assert.NotContains(t, f.logs.String(), "rejected too", "a was handed out before the host rejected z")

			_, err = callerIdentity(t.Context(), cfg)
			require.NoError(t, err, "a is replaced and the call replayed")
			assert.EqualValues(t, 3, f.srv.AssumeCalls())
		})
	}
}
