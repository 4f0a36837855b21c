package awscreds

import (
	"context"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
