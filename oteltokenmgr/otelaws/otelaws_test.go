package otelaws_test

import (
	"context"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/tokenmgr/tokenmgr/awscreds"
	"github.com/tokenmgr/tokenmgr/awscreds/ststest"
	"github.com/tokenmgr/tokenmgr/oteltokenmgr"
	"github.com/tokenmgr/tokenmgr/oteltokenmgr/otelaws"
)

// TestSTSCalls: a Provider instrumented by otelaws counts its STS calls,
// a throttled one by its AWS code, with its refreshes under the
// oteltokenmgr names; no AWS secret is in any attribute.
func TestSTSCalls(t *testing.T) {
	srv := ststest.NewServer()
	defer srv.Close()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte("web-identity-token-1\n"), 0o600))
	cfg := awscreds.Config{
		RoleARN: "arn:aws:iam::123456789012:role/app", RoleSessionName: "test", WebIdentityTokenFile: file,
		Region: "us-east-1", STSEndpoint: srv.URL, HTTPClient: srv.Client(),
	}
	otelaws.Instrument(&cfg, oteltokenmgr.WithMeterProvider(mp))
	p, err := awscreds.New(cfg)
	require.NoError(t, err)
	defer p.Close()
	srv.FailNext(ststest.ErrThrottling)
	creds, err := p.Retrieve(context.Background())
	require.NoError(t, err)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	got := map[string]map[string]int64{}
	var all []string
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
			got[m.Name] = map[string]int64{}
			for _, dp := range sum.DataPoints {
				got[m.Name][dp.Attributes.Encoded(attribute.DefaultEncoder())] = dp.Value
				all = append(all, dp.Attributes.Encoded(attribute.DefaultEncoder()))
			}
		}
	}
	key := "tokenmgr.credential=aws:arn:aws:iam::123456789012:role/app"
	want := map[string]int64{"error.type=Throttling," + key: 1, key: 1}
	assert.Equal(t, want, got["tokenmgr.aws.sts.requests"])
	assert.Equal(t, want, got["tokenmgr.token.requests"])
	assert.Equal(t, map[string]int64{key + ",tokenmgr.outcome=fetched,tokenmgr.reason=initial": 1}, got["tokenmgr.refreshes"])
	for _, s := range []string{creds.SecretAccessKey, creds.SessionToken, creds.AccessKeyID, "web-identity-token-1"} {
		assert.NotContains(t, all, s)
		for _, a := range all {
			assert.NotContains(t, a, s)
		}
	}
}

// TestSDKRejections: an AWS SDK client configured by the Provider reports
// the rejection of revoked credentials and its replay, the refresh it
// caused, and both STS calls.
func TestSDKRejections(t *testing.T) {
	srv := ststest.NewServer()
	defer srv.Close()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	file := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(file, []byte("web-identity-token-1\n"), 0o600))
	cfg := awscreds.Config{
		RoleARN: "arn:aws:iam::123456789012:role/app", RoleSessionName: "test", WebIdentityTokenFile: file,
		Region: "us-east-1", STSEndpoint: srv.URL, HTTPClient: srv.Client(), Key: "app",
	}
	otelaws.Instrument(&cfg, oteltokenmgr.WithMeterProvider(mp))
	p, err := awscreds.New(cfg)
	require.NoError(t, err)
	defer p.Close()
	awsCfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), HTTPClient: srv.Client()}
	p.Configure(&awsCfg)
	client := sts.NewFromConfig(awsCfg)
	_, err = client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	require.NoError(t, err)
	srv.RevokeAll()
	_, err = client.GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	require.NoError(t, err)

	var rm metricdata.ResourceMetrics
	require.NoError(t, reader.Collect(context.Background(), &rm))
	got := map[string]map[string]int64{}
	for _, m := range rm.ScopeMetrics[0].Metrics {
		if sum, ok := m.Data.(metricdata.Sum[int64]); ok {
			got[m.Name] = map[string]int64{}
			for _, dp := range sum.DataPoints {
				got[m.Name][dp.Attributes.Encoded(attribute.DefaultEncoder())] = dp.Value
			}
		}
	}
	u, err := url.Parse(srv.URL)
	require.NoError(t, err)
	host := "server.address=" + u.Hostname() + ",server.port=" + u.Port()
	assert.Equal(t, map[string]int64{host + ",tokenmgr.code=InvalidClientTokenId,tokenmgr.credential=app,tokenmgr.replayed=true": 1}, got["tokenmgr.rejections"])
	assert.Equal(t, map[string]int64{host + ",tokenmgr.credential=app": 1}, got["tokenmgr.replays"])
	assert.Equal(t, map[string]int64{
		"tokenmgr.credential=app,tokenmgr.outcome=fetched,tokenmgr.reason=initial": 1,
		"tokenmgr.credential=app,tokenmgr.outcome=fetched,tokenmgr.reason=invalid": 1,
	}, got["tokenmgr.refreshes"])
	assert.Equal(t, map[string]int64{"tokenmgr.credential=app": 2}, got["tokenmgr.aws.sts.requests"])
}
