package awscreds

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCredentialProcessOutput(t *testing.T) {
	exp := time.Date(2026, 12, 2, 3, 4, 5, 600, time.FixedZone("x", 3600))
	b, err := CredentialProcessOutput(aws.Credentials{AccessKeyID: "ASIA", SecretAccessKey: "s", SessionToken: "t", CanExpire: true, Expires: exp})
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Equal(t, map[string]any{"Version": 1.0, "AccessKeyId": "ASIA", "SecretAccessKey": "s", "SessionToken": "t", "Expiration": "2026-12-02T02:04:05Z"}, m)
	_, err = CredentialProcessOutput(aws.Credentials{})
	assert.Error(t, err)
}
