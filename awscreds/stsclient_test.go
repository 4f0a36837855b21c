package awscreds

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var _ STSClient = (*sts.Client)(nil)

// stsFunc is an STSClient of one function, as a test gives stscreds one.
type stsFunc func(context.Context, *sts.AssumeRoleWithWebIdentityInput) (*sts.AssumeRoleWithWebIdentityOutput, error)

func (f stsFunc) AssumeRoleWithWebIdentity(ctx context.Context, in *sts.AssumeRoleWithWebIdentityInput, _ ...func(*sts.Options)) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	return f(ctx, in)
}

// A Provider calls an injected STS client (no Region or endpoint then
// needed) with the role, session and web identity token, takes its
// credentials, and judges its errors as STS's own.
func TestInjectedSTSClient(t *testing.T) {
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte("web-identity-token-1"), 0o600))
	var got *sts.AssumeRoleWithWebIdentityInput
	fail := error(nil)
	client := stsFunc(func(_ context.Context, in *sts.AssumeRoleWithWebIdentityInput) (*sts.AssumeRoleWithWebIdentityOutput, error) {
		got = in
		if fail != nil {
			return nil, fail
		}
		return &sts.AssumeRoleWithWebIdentityOutput{Credentials: &types.Credentials{
			AccessKeyId: aws.String("ASIAINJECTED"), SecretAccessKey: aws.String("secret"),
			SessionToken: aws.String("session"), Expiration: aws.Time(time.Now().Add(time.Hour)),
		}}, nil
	})
	p, err := New(Config{RoleARN: testRole, RoleSessionName: "inj", WebIdentityTokenFile: file, STSClient: client})
	require.NoError(t, err)
	defer p.Close()
	creds, err := p.Retrieve(t.Context())
	require.NoError(t, err)
	assert.Equal(t, "ASIAINJECTED", creds.AccessKeyID)
	assert.Equal(t, testRole, aws.ToString(got.RoleArn))
	assert.Equal(t, "inj", aws.ToString(got.RoleSessionName))
	assert.Equal(t, "web-identity-token-1", aws.ToString(got.WebIdentityToken))

	fail = &smithy.GenericAPIError{Code: "AccessDenied", Message: "Not authorized"}
	p2, err := New(Config{RoleARN: testRole, WebIdentityTokenFile: file, STSClient: client})
	require.NoError(t, err)
	defer p2.Close()
	_, err = p2.Retrieve(t.Context())
	var se *STSError
	require.True(t, errors.As(err, &se), "%v", err)
	assert.Equal(t, "AccessDenied", se.Code)
}
