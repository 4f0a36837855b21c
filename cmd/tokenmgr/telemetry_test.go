package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// otlpReceiver is an OTLP/HTTP collector on loopback: it decodes the
// export requests as a collector does and keeps them, and their bytes.
type otlpReceiver struct {
	*httptest.Server
	mu      sync.Mutex
	raw     []byte
	spans   []string         // span names
	metrics map[string]int64 // sum of each int counter's data points
	status  int              // answer; 0: 200
	body    string           // the answer's body when status is set
}

// otelBin builds, once, the binary with -tags otel, next to binPath.
var otelBin = sync.OnceValues(func() (string, error) {
	bin := filepath.Join(filepath.Dir(binPath), "tokenmgr-otel")
	if runtime.GOOS == "windows" {
		bin += ".exe"
	}
	out, err := exec.Command("go", "build", "-tags", "otel", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build -tags otel: %v\n%s", err, out)
	}
	return bin, nil
})

// exeOtel is exe with the binary built with -tags otel.
func exeOtel(t *testing.T, sec *secrets, env vars, args ...string) result {
	t.Helper()
	bin, err := otelBin()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return exeBin(ctx, t, bin, sec, env, args...)
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{metrics: map[string]int64{}}
	r.Server = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.Close)
	return r
}

func (r *otlpReceiver) serve(w http.ResponseWriter, req *http.Request) {
	b, err := io.ReadAll(req.Body)
	if err != nil || req.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want a protobuf body", http.StatusBadRequest)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.raw = append(r.raw, b...)
	if r.status != 0 {
		http.Error(w, r.body, r.status)
		return
	}
	var out proto.Message
	switch req.URL.Path {
	case "/v1/traces":
		var m coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(b, &m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rs := range m.ResourceSpans {
			for _, ss := range rs.ScopeSpans {
				for _, s := range ss.Spans {
					r.spans = append(r.spans, s.Name)
				}
			}
		}
		out = &coltracepb.ExportTraceServiceResponse{}
	case "/v1/metrics":
		var m colmetricpb.ExportMetricsServiceRequest
		if err := proto.Unmarshal(b, &m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for _, rm := range m.ResourceMetrics {
			for _, sm := range rm.ScopeMetrics {
				for _, x := range sm.Metrics {
					r.metrics[x.Name] += 0 // seen
					if s := x.GetSum(); s != nil {
						for _, dp := range s.DataPoints {
							r.metrics[x.Name] += dp.GetAsInt()
						}
					}
				}
			}
		}
		out = &colmetricpb.ExportMetricsServiceResponse{}
	default:
		http.NotFound(w, req)
		return
	}
	resp, _ := proto.Marshal(out)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(resp)
}

func (r *otlpReceiver) got() (raw string, spans []string, metrics map[string]int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string]int64{}
	for k, v := range r.metrics {
		m[k] = v
	}
	return string(r.raw), append([]string(nil), r.spans...), m
}

func TestE2ETokenExportsTelemetry(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	recv := newOTLPReceiver(t)
	env := fileStoreVars(t).with(oauthVars(s).flat()...).with("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL)

	r := exeOtel(t, sec, env, "token")
	wantCode(t, r, 0)
	assert.Empty(t, r.stderr)
	require.True(t, s.Valid(strings.TrimSpace(r.stdout)))

	// The process has exited: whatever it exported has arrived.
	raw, spans, metrics := recv.got()
	assert.Contains(t, spans, "tokenmgr.refresh")
	assert.Contains(t, spans, "tokenmgr token")
	assert.Equal(t, int64(1), metrics["tokenmgr.refreshes"], "metrics: %v", metrics)
	assert.Equal(t, int64(1), metrics["tokenmgr.token.requests"], "metrics: %v", metrics)
	// No secret in what was exported, the printed token among them.
	sec.add(strings.TrimSpace(r.stdout))
	sec.check(t, "the OTLP export", raw)
}

func TestE2ETokenExportsNothingUnlessAsked(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	recv := newOTLPReceiver(t)
	base := fileStoreVars(t).with(oauthVars(s).flat()...)
	for name, env := range map[string]vars{
		"no OTEL variables":     base.with("OTEL_SERVICE_NAME", "svc"),
		"OTEL_SDK_DISABLED":     base.with("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL, "OTEL_SDK_DISABLED", "true"),
		"both exporters none":   base.with("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL, "OTEL_TRACES_EXPORTER", "none", "OTEL_METRICS_EXPORTER", "none"),
		"endpoint of a service": base.with("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT", recv.URL+"/v1/logs"),
	} {
		r := exeOtel(t, sec, env, "token")
		wantCode(t, r, 0)
		assert.Empty(t, r.stderr, name)
	}
	// A build without -tags otel links no exporter.
	r := exe(t, sec, base.with("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL), "token", "--force-refresh")
	wantCode(t, r, 0)
	assert.Empty(t, r.stderr)
	raw, _, _ := recv.got()
	assert.Empty(t, raw)

	// Traces alone.
	r = exeOtel(t, sec, base.with("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL, "OTEL_METRICS_EXPORTER", "none"), "token", "--force-refresh")
	wantCode(t, r, 0)
	_, spans, metrics := recv.got()
	assert.Contains(t, spans, "tokenmgr.refresh")
	assert.Empty(t, metrics)
}

func TestE2ETelemetryExportFailureIsAWarning(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	apiKey := "otlp-key-" + randText(t)
	sec.add(apiKey)
	env := fileStoreVars(t).with(oauthVars(s).flat()...).with("OTEL_EXPORTER_OTLP_HEADERS", "x-api-key="+apiKey)

	// Nothing listens at the endpoint.
	down := "http://" + closedPort(t)
	r := exeOtel(t, sec, env.with("OTEL_EXPORTER_OTLP_ENDPOINT", down), "token")
	wantCode(t, r, 0)
	require.True(t, s.Valid(strings.TrimSpace(r.stdout)))
	assert.Contains(t, r.stderr, "tokenmgr: warning: exporting traces to "+down+"/v1/traces failed")
	assert.Contains(t, r.stderr, "tokenmgr: warning: exporting metrics to "+down+"/v1/metrics failed")

	// A collector that refuses the key and quotes it: the warning does not.
	recv := newOTLPReceiver(t)
	recv.mu.Lock()
	recv.status, recv.body = http.StatusUnauthorized, "bad key "+apiKey
	recv.mu.Unlock()
	r = exeOtel(t, sec, env.with("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL), "token")
	wantCode(t, r, 0)
	assert.Contains(t, r.stderr, "exporting traces to "+recv.URL+"/v1/traces failed")
	assert.Contains(t, r.stderr, "[redacted]")
}

func TestTelemetryWanted(t *testing.T) {
	for _, tc := range []struct {
		env             vars
		traces, metrics bool
	}{
		{vars{}, false, false},
		{vars{"OTEL_SERVICE_NAME": "x"}, false, false},
		{vars{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, true, true},
		{vars{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, true, false},
		{vars{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://c:4318/v1/metrics"}, false, true},
		{vars{"OTEL_TRACES_EXPORTER": "otlp"}, true, false},
		{vars{"OTEL_METRICS_EXPORTER": "otlp"}, false, true},
		{vars{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_TRACES_EXPORTER": "none"}, false, true},
		{vars{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_METRICS_EXPORTER": "console"}, true, false},
	} {
		tr, _ := signalWanted(tc.env.lookup, "TRACES")
		me, _ := signalWanted(tc.env.lookup, "METRICS")
		assert.Equal(t, tc.traces, tr, "traces with %v", tc.env)
		assert.Equal(t, tc.metrics, me, "metrics with %v", tc.env)
	}
}

func TestTelemetryURLHasNoCredentials(t *testing.T) {
	got := otlpURL(vars{"OTEL_EXPORTER_OTLP_ENDPOINT": "https://user:pw@c.example:4318/?key=k"}.lookup, "TRACES", "/v1/traces")
	assert.Equal(t, "https://c.example:4318/v1/traces", got)
	got = otlpURL(vars{"OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://c:1/m?key=k"}.lookup, "METRICS", "/v1/metrics")
	assert.Equal(t, "http://c:1/m", got)
}

func TestHelpNamesOTELVariables(t *testing.T) {
	t.Parallel()
	r := exeOtel(t, nil, vars{}, "--help")
	for _, d := range otelDocs {
		assert.Contains(t, r.stdout, d.Name)
	}
	// The default build says how to get the export.
	r = exe(t, nil, vars{}, "--help")
	assert.Contains(t, r.stdout, "-tags otel")
	assert.Contains(t, r.stdout, "OTEL_EXPORTER_OTLP_ENDPOINT")
}

// aws credential-process with a token file: otelaws counts its STS call,
// and the AWS credentials it printed are nowhere in the export.
func TestE2EAWSCredentialProcessExportsTelemetry(t *testing.T) {
	t.Parallel()
	srv, env := awsVars(t)
	recv := newOTLPReceiver(t)
	r := exeOtel(t, nil, env.with("OTEL_EXPORTER_OTLP_ENDPOINT", recv.URL), "aws", "credential-process")
	wantCode(t, r, 0)
	assert.Empty(t, r.stderr)
	require.EqualValues(t, 1, srv.AssumeCalls())

	raw, spans, metrics := recv.got()
	assert.Contains(t, spans, "tokenmgr.refresh")
	assert.Contains(t, spans, "tokenmgr aws credential-process")
	assert.Equal(t, int64(1), metrics["tokenmgr.refreshes"], "metrics: %v", metrics)
	assert.Equal(t, int64(1), metrics["tokenmgr.aws.sts.requests"], "metrics: %v", metrics)
	var out processJSON
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &out))
	sec := &secrets{}
	sec.add(out.AccessKeyID, out.SecretAccessKey, out.SessionToken, "web-identity-token")
	sec.check(t, "the OTLP export", raw)
}

// doctor exports a span of its run, with its exit code.
func TestE2EDoctorExportsASpan(t *testing.T) {
	t.Parallel()
	s, sec := oauthServer(t, tokenmgrtest.Options{})
	recv := newOTLPReceiver(t)
	env := fileStoreVars(t).with(oauthVars(s).flat()...).with("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", recv.URL+"/v1/traces")
	r := exeOtel(t, sec, env, "doctor", "--offline")
	wantCode(t, r, 0)
	raw, spans, metrics := recv.got()
	assert.Equal(t, []string{"tokenmgr doctor"}, spans)
	assert.Empty(t, metrics, "metrics were not asked for")
	sec.check(t, "the OTLP export", raw)
}
