package otelaws_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

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
