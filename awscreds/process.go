package awscreds

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// processOutput is the credential_process output format, Version 1
// (docs.aws.amazon.com/sdkref/latest/guide/feature-process-credentials.html,
// read by aws-sdk-go-v2's credentials/processcreds).
type processOutput struct {
	Version         int
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	SessionToken    string `json:",omitempty"`
	Expiration      string `json:",omitempty"`
}

// CredentialProcessOutput returns creds as the JSON an AWS SDK or the AWS
// CLI reads from a credential_process command: Version 1, AccessKeyId,
// SecretAccessKey, SessionToken and Expiration (RFC 3339, UTC). It holds
// secrets: write it to the process's stdout only.
func CredentialProcessOutput(creds aws.Credentials) ([]byte, error) {
	if creds.AccessKeyID == "" || creds.SecretAccessKey == "" {
		return nil, errors.New("awscreds: credentials without an access key ID or secret")
	}
	out := processOutput{Version: 1, AccessKeyID: creds.AccessKeyID, SecretAccessKey: creds.SecretAccessKey, SessionToken: creds.SessionToken}
	if creds.CanExpire {
		out.Expiration = creds.Expires.UTC().Format(time.RFC3339)
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}
