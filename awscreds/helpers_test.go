package awscreds

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/awscreds/ststest"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

const testRole = "arn:aws:iam::123456789012:role/app"

// fixture is an STS, a web identity token file and a Provider using them.
type fixture struct {
	srv  *ststest.Server
	file string
	p    *Provider
	logs *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newFixture starts srv (nil: a listening ststest server) and a Provider
// reading the web identity token from a file; mod adjusts the Config.
func newFixture(t testing.TB, srv *ststest.Server, mod func(*Config)) *fixture {
	t.Helper()
	if srv == nil {
		srv = ststest.NewServer()
		t.Cleanup(srv.Close)
	}
	f := &fixture{srv: srv, logs: &syncBuffer{}}
	f.file = filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(f.file, []byte("web-identity-token-1\n"), 0o600))
	cfg := Config{
		RoleARN:              testRole,
		RoleSessionName:      "test",
		WebIdentityTokenFile: f.file,
		Region:               "us-east-1",
		STSEndpoint:          srv.URL,
		HTTPClient:           srv.Client(),
		Logger:               slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := New(cfg)
	require.NoError(t, err)
	f.p = p
	t.Cleanup(func() { p.Close() })
	return f
}

// awsConfig is an aws.Config reaching srv, with no credentials yet.
func awsConfig(srv *ststest.Server) aws.Config {
	return aws.Config{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		HTTPClient:   srv.Client(),
	}
}

// callerIdentity calls STS GetCallerIdentity (signed) with cfg.
func callerIdentity(ctx context.Context, cfg aws.Config) (*sts.GetCallerIdentityOutput, error) {
	return sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
}

// secretsOf lists the secret parts of every session srv issued.
func secretsOf(srv *ststest.Server) []string {
	var out []string
	for _, s := range srv.Sessions() {
		out = append(out, s.SecretAccessKey, s.SessionToken, s.WebIdentityToken)
	}
	return out
}

func hashHex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// oauthWebIdentity starts an OAuth token endpoint (the web identity
// issuer) and a test STS, and returns the variables of a configuration
// whose web identity token comes from the TOKENMGR_* OAuth client (no
// token file), with STS's URL in endpointVar (AWS_ENDPOINT_URL or
// AWS_ENDPOINT_URL_STS) and the memory store.
func oauthWebIdentity(t *testing.T, endpointVar string) (*tokenmgrtest.Server, *ststest.Server, map[string]string) {
	t.Helper()
	idp := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	t.Cleanup(idp.Close)
	srv := ststest.NewServer()
	t.Cleanup(srv.Close)
	return idp, srv, map[string]string{
		"AWS_ROLE_ARN": testRole, "AWS_REGION": "us-east-1", endpointVar: srv.URL,
		"TOKENMGR_TOKEN_URL": idp.TokenURL(), "TOKENMGR_CLIENT_ID": idp.ClientID,
		"TOKENMGR_CLIENT_SECRET": idp.ClientSecret, "TOKENMGR_STORE": "memory",
	}
}
