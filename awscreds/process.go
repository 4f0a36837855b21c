package awscreds

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// ProcessMinRemaining is how long credentials [Provider.CredentialProcess]
// prints have left at least. botocore (the AWS CLI, boto3) runs
// credential_process again at every access once less than 15 minutes are
// left (RefreshableCredentials' advisory refresh timeout; the mandatory
// one is 10 minutes): credentials printed with less would cost a process
// per call.
const ProcessMinRemaining = 15 * time.Minute

// CredentialProcess returns the credential_process JSON
// ([CredentialProcessOutput]) of credentials with at least
// [ProcessMinRemaining] left, or half the session's Duration when that is
// shorter (so a short session does not cost an STS call per run): ones
// held closer to their expiry are replaced first. With forceRefresh the
// credentials held (in memory or in the store) are dropped and new ones
// fetched from STS whatever their expiry: for a session revoked before it
// expires. Either way one run makes one STS call at most.
func (p *Provider) CredentialProcess(ctx context.Context, forceRefresh bool) ([]byte, error) {
	fetches := p.c.Stats().Fetches
	creds, err := p.Retrieve(ctx)
	if err != nil {
		return nil, err
	}
	fresh := p.c.Stats().Fetches > fetches // just fetched from STS by this call
	// Credentials without an expiry (stored from an STS answer without one
	// before such answers were refused) would be printed for ever.
	short := !creds.CanExpire || creds.Expires.Sub(p.now()) < min(ProcessMinRemaining, p.src.duration/2)
	if !fresh && (forceRefresh || short) {
		p.log.Info("replacing the credentials held for credential_process", "forced", forceRefresh, "expires", creds.Expires)
		p.Invalidate(creds)
		if creds, err = p.Retrieve(ctx); err != nil {
			return nil, err
		}
	}
	return CredentialProcessOutput(creds)
}

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
