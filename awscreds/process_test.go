package awscreds

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/awscreds/ststest"
	"github.com/tokenmgr/tokenmgr/store"
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

// botocore models the AWS CLI's and boto3's use of credential_process
// (botocore/credentials.py, RefreshableCredentials): at each access, once
// less than the advisory 15 minutes are left, the process is run again
// and its output taken. It returns how many processes ran.
type botocore struct {
	run     func() []byte
	expires time.Time
	runs    int
}

func (b *botocore) access(t *testing.T) {
	const advisory = 15 * time.Minute
	if !b.expires.IsZero() && time.Until(b.expires) >= advisory {
		return
	}
	b.runs++
	var out struct{ Expiration string }
	require.NoError(t, json.Unmarshal(b.run(), &out))
	exp, err := time.Parse(time.RFC3339, out.Expiration)
	require.NoError(t, err)
	require.True(t, time.Now().Before(exp), "expired credentials printed")
	b.expires = exp
}

// Over a simulated two hours of calls every 30 s from botocore, each
// credential_process run a new Provider over one store (a new process),
// CredentialProcess prints credentials botocore keeps until they are
// within its advisory window: about one process per 45 minutes, not one
// per call for the last 10 minutes of every hour. Before (Retrieve as it
// is: one-hour credentials handed out until 5 minutes before expiry), 20
// calls in each such window ran 20 processes.
func TestCredentialProcessBotocoreRule(t *testing.T) {
	for _, tc := range []struct {
		name  string
		print func(context.Context, *Provider) ([]byte, error)
		max   int
	}{
		{"Retrieve", func(ctx context.Context, p *Provider) ([]byte, error) {
			c, err := p.Retrieve(ctx)
			if err != nil {
				return nil, err
			}
			return CredentialProcessOutput(c)
		}, -1},
		{"CredentialProcess", func(ctx context.Context, p *Provider) ([]byte, error) { return p.CredentialProcess(ctx, false) }, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				srv := ststest.NewHandler()
				st := store.NewMemory()
				file := filepath.Join(t.TempDir(), "token")
				require.NoError(t, os.WriteFile(file, []byte("web-identity-token-1"), 0o600))
				b := &botocore{run: func() []byte {
					p, err := New(Config{
						RoleARN: testRole, WebIdentityTokenFile: file, Region: "us-east-1",
						STSEndpoint: srv.URL, HTTPClient: srv.Client(), Store: st,
					})
					require.NoError(t, err)
					defer p.Close()
					out, err := tc.print(t.Context(), p)
					require.NoError(t, err)
					return out
				}}
				const calls = 240 // two hours, one call every 30 s
				for range calls {
					b.access(t)
					time.Sleep(30 * time.Second)
				}
				t.Logf("%s: %d processes for %d calls (%.3f per call), %d STS calls", tc.name, b.runs, calls, float64(b.runs)/calls, srv.AssumeCalls())
				if tc.max >= 0 {
					assert.LessOrEqual(t, b.runs, tc.max)
					assert.LessOrEqual(t, srv.AssumeCalls(), int64(tc.max))
				}
			})
		})
	}
}

// --force-refresh's library half: the credentials held (here in the
// store, as a new process finds them) are replaced by new ones from STS,
// with one STS call; without it they are served as they are.
func TestCredentialProcessForceRefresh(t *testing.T) {
	srv := ststest.NewServer()
	t.Cleanup(srv.Close)
	st := store.NewMemory()
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte("web-identity-token-1"), 0o600))
	run := func(force bool) processOutput {
		p, err := New(Config{RoleARN: testRole, WebIdentityTokenFile: file, Region: "us-east-1",
			STSEndpoint: srv.URL, HTTPClient: srv.Client(), Store: st})
		require.NoError(t, err)
		defer p.Close()
		b, err := p.CredentialProcess(t.Context(), force)
		require.NoError(t, err)
		var out processOutput
		require.NoError(t, json.Unmarshal(b, &out))
		return out
	}
	first := run(true) // nothing held: one STS call, not two
	assert.EqualValues(t, 1, srv.AssumeCalls())
	assert.Equal(t, first, run(false))
	assert.EqualValues(t, 1, srv.AssumeCalls())
	forced := run(true)
	assert.NotEqual(t, first.AccessKeyID, forced.AccessKeyID)
	assert.EqualValues(t, 2, srv.AssumeCalls())
	assert.Equal(t, forced, run(false), "the new credentials are stored")
}
