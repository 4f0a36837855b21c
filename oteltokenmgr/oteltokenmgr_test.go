package oteltokenmgr_test

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/oteltokenmgr"
	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// telemetry is an SDK that keeps what it records in memory.
type telemetry struct {
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	tp     *sdktrace.TracerProvider
	opts   []oteltokenmgr.Option
}

func newTelemetry() *telemetry {
	t := &telemetry{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder()}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(t.reader))
	t.tp = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(t.spans))
	t.opts = []oteltokenmgr.Option{oteltokenmgr.WithMeterProvider(mp), oteltokenmgr.WithTracerProvider(t.tp)}
	return t
}

func (tm *telemetry) collect(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	require.NoError(t, tm.reader.Collect(context.Background(), &rm))
	return rm
}

// attrs writes an attribute set as "k=v,k=v", sorted by key.
func attrs(s attribute.Set) string {
	return s.Encoded(attribute.DefaultEncoder())
}

// counts returns a counter's value per attribute set.
func counts(t *testing.T, rm metricdata.ResourceMetrics, name string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			require.True(t, ok, "%s is a %T", name, m.Data)
			for _, dp := range sum.DataPoints {
				out[attrs(dp.Attributes)] = dp.Value
			}
		}
	}
	return out
}

// metric returns the named metric.
func metric(t *testing.T, rm metricdata.ResourceMetrics, name string) metricdata.Metrics {
	t.Helper()
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m
			}
		}
	}
	t.Fatalf("no metric %s", name)
	return metricdata.Metrics{}
}

func ccConfig(s *tokenmgrtest.Server) *clientcredentials.Config {
	return &clientcredentials.Config{ClientID: s.ClientID, ClientSecret: s.ClientSecret, TokenURL: s.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}
}

func newClient(t *testing.T, cfg tokenmgr.Config) *tokenmgr.Client {
	t.Helper()
	c, err := tokenmgr.New(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func get(t *testing.T, ctx context.Context, hc *http.Client, url string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	require.NoError(t, err)
	resp, err := hc.Do(req)
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func spanNamed(spans []sdktrace.ReadOnlySpan, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func spanAttrs(s sdktrace.ReadOnlySpan) string {
	return attrs(attribute.NewSet(s.Attributes()...))
}

// TestMetricsAndSpans drives a real Client against the test OAuth server:
// a first refresh under a caller's span, a token request the endpoint
// fails with a 503, a rejection replayed with a fresh token. Every
// instrument and span is checked exactly.
func TestMetricsAndSpans(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	var mu sync.Mutex
	fail := 1
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/token" && fail > 0 {
			fail--
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	})
	tm := newTelemetry()
	cfg := tokenmgr.Config{Source: tokenmgr.ClientCredentials(ccConfig(srv)), Key: "api", Store: store.NewMemory()}
	oteltokenmgr.Instrument(&cfg, tm.opts...)
	c := newClient(t, cfg)

	tracer := tm.tp.Tracer("test")
	ctx, caller := tracer.Start(context.Background(), "caller")
	tok, err := c.Token(ctx)
	require.NoError(t, err)
	caller.End()

	srv.Revoke(tok.AccessToken)
	rctx, request := tracer.Start(context.Background(), "request")
	assert.Equal(t, http.StatusOK, get(t, rctx, c.HTTPClient(), srv.URL+"/api"))
	request.End()

	rm := tm.collect(t)
	host, port, _ := strings.Cut(strings.TrimPrefix(srv.URL, "http://"), ":")
	assert.Equal(t, map[string]int64{
		"tokenmgr.credential=api,tokenmgr.outcome=fetched,tokenmgr.reason=initial": 1,
		"tokenmgr.credential=api,tokenmgr.outcome=fetched,tokenmgr.reason=invalid": 1,
	}, counts(t, rm, "tokenmgr.refreshes"))
	assert.Equal(t, map[string]int64{
		"error.type=5xx,tokenmgr.credential=api": 1,
		"tokenmgr.credential=api":                2,
	}, counts(t, rm, "tokenmgr.token.requests"))
	assert.Equal(t, map[string]int64{
		"server.address=" + host + ",server.port=" + port + ",tokenmgr.code=InvalidClientTokenId,tokenmgr.credential=api,tokenmgr.replayed=true": 1,
	}, counts(t, rm, "tokenmgr.rejections"))
	assert.Equal(t, map[string]int64{
		"server.address=" + host + ",server.port=" + port + ",tokenmgr.credential=api": 1,
	}, counts(t, rm, "tokenmgr.replays"))
	assert.Empty(t, counts(t, rm, "tokenmgr.store.errors"))
	assert.Empty(t, counts(t, rm, "tokenmgr.held_off"))

	hist := metric(t, rm, "tokenmgr.refresh.duration")
	assert.Equal(t, "s", hist.Unit)
	h := hist.Data.(metricdata.Histogram[float64])
	require.Len(t, h.DataPoints, 2)
	for _, dp := range h.DataPoints {
		assert.Equal(t, uint64(1), dp.Count)
		assert.Greater(t, dp.Sum, 0.0)
	}
	lw := metric(t, rm, "tokenmgr.store.lock_wait").Data.(metricdata.Histogram[float64])
	require.Len(t, lw.DataPoints, 1)
	assert.Equal(t, "tokenmgr.credential=api", attrs(lw.DataPoints[0].Attributes))
	assert.Equal(t, uint64(2), lw.DataPoints[0].Count, "both refreshes took the memory store's lock")
	gauge := metric(t, rm, "tokenmgr.token.time_left")
	assert.Equal(t, "s", gauge.Unit)
	g := gauge.Data.(metricdata.Gauge[float64])
	require.Len(t, g.DataPoints, 1)
	assert.Equal(t, "tokenmgr.credential=api", attrs(g.DataPoints[0].Attributes))
	assert.InDelta(t, 3600, g.DataPoints[0].Value, 60)
	defer func() {
		// Closed: its gauge stops.
		require.NoError(t, c.Close())
		for _, sm := range tm.collect(t).ScopeMetrics {
			for _, m := range sm.Metrics {
				if m.Name == "tokenmgr.token.time_left" {
					assert.Empty(t, m.Data.(metricdata.Gauge[float64]).DataPoints)
				}
			}
		}
	}()

	spans := tm.spans.Ended()
	refreshes := spanNamed(spans, "tokenmgr.refresh")
	require.Len(t, refreshes, 2)
	first, second := refreshes[0], refreshes[1]
	assert.Equal(t, caller.SpanContext().SpanID(), first.Parent().SpanID(), "the first refresh is the caller's child")
	assert.Equal(t, caller.SpanContext().TraceID(), first.SpanContext().TraceID())
	assert.Equal(t, "tokenmgr.attempts=2,tokenmgr.credential=api,tokenmgr.from_store=false,tokenmgr.outcome=fetched,tokenmgr.reason=initial", spanAttrs(first))
	require.Len(t, first.Events(), 2)
	assert.Equal(t, "tokenmgr.token_request", first.Events()[0].Name)
	assert.Equal(t, "error.type=5xx,tokenmgr.attempt=1", attrs(attribute.NewSet(first.Events()[0].Attributes...)))
	assert.Equal(t, "tokenmgr.attempt=2", attrs(attribute.NewSet(first.Events()[1].Attributes...)))

	assert.Equal(t, request.SpanContext().SpanID(), second.Parent().SpanID(), "the refresh after a rejection is the request's child")
	assert.Equal(t, "tokenmgr.attempts=1,tokenmgr.credential=api,tokenmgr.from_store=false,tokenmgr.outcome=fetched,tokenmgr.reason=invalid", spanAttrs(second))

	req := spanNamed(spans, "request")[0]
	require.Len(t, req.Events(), 1)
	assert.Equal(t, "tokenmgr.rejected", req.Events()[0].Name)
	assert.Equal(t, "server.address="+host+",server.port="+port+",tokenmgr.code=InvalidClientTokenId,tokenmgr.replayed=true",
		attrs(attribute.NewSet(req.Events()[0].Attributes...)))
}

// TestFailuresAndHeldOff: a client whose secret the endpoint refuses
// counts the failure by its OAuth code, holds the next call off, and
// reports no time left; a Store that fails is counted per operation.
func TestFailuresAndHeldOff(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	tm := newTelemetry()
	bad := ccConfig(srv)
	bad.ClientSecret = "wrong-secret"
	cfg := tokenmgr.Config{Source: tokenmgr.ClientCredentials(bad), Key: "bad", Store: failingStore{}}
	oteltokenmgr.Instrument(&cfg, tm.opts...)
	c := newClient(t, cfg)
	for range 2 {
		_, err := c.Token(context.Background())
		require.ErrorIs(t, err, tokenmgr.ErrInvalidClient)
	}
	rm := tm.collect(t)
	assert.Equal(t, map[string]int64{
		"error.type=invalid_client,tokenmgr.credential=bad,tokenmgr.outcome=failed,tokenmgr.reason=initial": 1,
	}, counts(t, rm, "tokenmgr.refreshes"))
	assert.Equal(t, map[string]int64{"error.type=invalid_client,tokenmgr.credential=bad": 1}, counts(t, rm, "tokenmgr.token.requests"))
	assert.Equal(t, map[string]int64{"tokenmgr.cause=cooldown,tokenmgr.credential=bad": 1}, counts(t, rm, "tokenmgr.held_off"))
	assert.Equal(t, map[string]int64{"error.type=unavailable,tokenmgr.credential=bad,tokenmgr.store.operation=load": 1}, counts(t, rm, "tokenmgr.store.errors"))
	g := metric(t, rm, "tokenmgr.token.time_left").Data.(metricdata.Gauge[float64])
	require.Len(t, g.DataPoints, 1)
	assert.Equal(t, 0.0, g.DataPoints[0].Value)

	refresh := spanNamed(tm.spans.Ended(), "tokenmgr.refresh")
	require.Len(t, refresh, 1)
	assert.Equal(t, "Error", refresh[0].Status().Code.String())
	assert.Equal(t, "invalid_client", refresh[0].Status().Description)
	assert.Equal(t, []string{"tokenmgr.store_error", "tokenmgr.token_request"}, []string{refresh[0].Events()[0].Name, refresh[0].Events()[1].Name})
}

// failingStore is a Store whose server is down.
type failingStore struct{ store.Store }

func (failingStore) Load(context.Context, string) ([]byte, error) {
	return nil, store.ErrUnavailable
}

// TestBackgroundRefreshIsLinked: a background refresh is a trace of its
// own, linked to the request that found the token stale.
func TestBackgroundRefreshIsLinked(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	synctest.Test(t, func(t *testing.T) {
		tm := newTelemetry()
		cfg := tokenmgr.Config{
			Source:          tokenmgr.ClientCredentials(ccConfig(srv)),
			TokenHTTPClient: &http.Client{Transport: srv.InMemoryTransport()},
		}
		oteltokenmgr.Instrument(&cfg, tm.opts...)
		c := newClient(t, cfg)
		_, err := c.Token(context.Background())
		require.NoError(t, err)
		time.Sleep(59 * time.Minute) // in the refresh window, not expired
		ctx, stale := tm.tp.Tracer("test").Start(context.Background(), "stale")
		_, err = c.Token(ctx)
		require.NoError(t, err)
		stale.End()
		synctest.Wait()

		refresh := spanNamed(tm.spans.Ended(), "tokenmgr.refresh")
		require.Len(t, refresh, 2)
		bg := refresh[1]
		assert.Equal(t, "tokenmgr.attempts=1,tokenmgr.credential=default,tokenmgr.from_store=false,tokenmgr.outcome=fetched,tokenmgr.reason=early", spanAttrs(bg))
		assert.False(t, bg.Parent().IsValid(), "a root span")
		require.Len(t, bg.Links(), 1)
		assert.Equal(t, stale.SpanContext(), bg.Links()[0].SpanContext)
		g := metric(t, tm.collect(t), "tokenmgr.token.time_left").Data.(metricdata.Gauge[float64])
		assert.InDelta(t, 3600, g.DataPoints[0].Value, 1, "the new token's")
	})
}

// TestNoSecretInTelemetry drives refreshes with a refresh token, a
// rejection, failures and a store, then looks for every secret the test
// used in every exported attribute, event, status and name: none is there.
func TestNoSecretInTelemetry(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{Rotate: true})
	defer srv.Close()
	tm := newTelemetry()
	var mu sync.Mutex
	var issued []string
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool { return false })
	seed := srv.IssueRefreshToken()
	passphrase := "correct horse battery staple " + strconv.Itoa(int(time.Now().UnixNano()))
	st, err := store.NewEncryptedFile(t.TempDir()+"/tokens", []byte(passphrase))
	require.NoError(t, err)
	rt := tokenmgr.RefreshToken(&oauth2.Config{ClientID: srv.ClientID, ClientSecret: srv.ClientSecret,
		Endpoint: oauth2.Endpoint{TokenURL: srv.TokenURL(), AuthStyle: oauth2.AuthStyleInHeader}}, seed)
	cfg := tokenmgr.Config{Source: rt, Store: st, Key: "user-cred",
		OnRefresh: func(ev tokenmgr.RefreshEvent) {}}
	oteltokenmgr.Instrument(&cfg, tm.opts...)
	c := newClient(t, cfg)
	tracer := tm.tp.Tracer("test")
	for range 3 {
		ctx, sp := tracer.Start(context.Background(), "work")
		tok, err := c.Token(ctx)
		require.NoError(t, err)
		mu.Lock()
		issued = append(issued, tok.AccessToken, tok.RefreshToken)
		mu.Unlock()
		srv.Revoke(tok.AccessToken)
		assert.Equal(t, http.StatusOK, get(t, ctx, c.HTTPClient(), srv.URL+"/api?access_token="+tok.AccessToken))
		sp.End()
	}
	// A failure whose answer quotes the secret.
	srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
		if r.URL.Path != "/token" {
			return false
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":"invalid_grant","error_description":"bad `+srv.ClientSecret+`"}`)
		return true
	})
	tok, _ := c.Token(context.Background())
	srv.Revoke(tok.AccessToken)
	get(t, context.Background(), c.HTTPClient(), srv.URL+"/api")

	secrets := append([]string{srv.ClientSecret, seed, passphrase}, issued...)
	var texts []string
	add := func(kvs ...attribute.KeyValue) {
		for _, kv := range kvs {
			texts = append(texts, string(kv.Key)+"="+kv.Value.String())
		}
	}
	for _, sm := range tm.collect(t).ScopeMetrics {
		for _, m := range sm.Metrics {
			texts = append(texts, m.Name, m.Description)
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					add(dp.Attributes.ToSlice()...)
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					add(dp.Attributes.ToSlice()...)
				}
			case metricdata.Gauge[float64]:
				for _, dp := range d.DataPoints {
					add(dp.Attributes.ToSlice()...)
				}
			default:
				t.Fatalf("%s: unexpected %T", m.Name, m.Data)
			}
		}
	}
	for _, s := range tm.spans.Ended() {
		texts = append(texts, s.Name(), s.Status().Description)
		add(s.Attributes()...)
		for _, e := range s.Events() {
			texts = append(texts, e.Name)
			add(e.Attributes...)
		}
	}
	require.Greater(t, len(texts), 50, "telemetry was recorded")
	all := strings.Join(texts, "\n")
	assert.Contains(t, all, "invalid_grant")
	for _, s := range secrets {
		require.NotEmpty(t, s)
		assert.NotContains(t, all, s)
	}
}

// TestInstrumentKeepsObserver: an Observer set before Instrument still
// gets its events, and sees the refresh's span.
func TestInstrumentKeepsObserver(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	tm := newTelemetry()
	var seen trace.SpanContext
	cfg := tokenmgr.Config{Source: tokenmgr.ClientCredentials(ccConfig(srv)), Observer: &tokenmgr.Observer{
		RefreshDone: func(ctx context.Context, ev tokenmgr.RefreshEvent) { seen = trace.SpanContextFromContext(ctx) },
	}}
	oteltokenmgr.Instrument(&cfg, tm.opts...)
	c := newClient(t, cfg)
	_, err := c.Token(context.Background())
	require.NoError(t, err)
	refresh := spanNamed(tm.spans.Ended(), "tokenmgr.refresh")
	require.Len(t, refresh, 1)
	assert.Equal(t, refresh[0].SpanContext(), seen)
}

// TestInstrumentedFromEnv: a Client from the TOKENMGR_* variables is
// instrumented through NewFromEnv's adjust func.
func TestInstrumentedFromEnv(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	for k, v := range map[string]string{
		"TOKENMGR_TOKEN_URL": srv.TokenURL(), "TOKENMGR_CLIENT_ID": srv.ClientID, "TOKENMGR_CLIENT_SECRET": srv.ClientSecret,
		"TOKENMGR_AUTH_STYLE": "header", "TOKENMGR_STORE": "memory", "TOKENMGR_KEY": "from-env",
	} {
		t.Setenv(k, v)
	}
	tm := newTelemetry()
	c, err := tokenmgr.NewFromEnv(oteltokenmgr.Instrumented(tm.opts...))
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, map[string]int64{
		"tokenmgr.credential=from-env,tokenmgr.outcome=fetched,tokenmgr.reason=initial": 1,
	}, counts(t, tm.collect(t), "tokenmgr.refreshes"))
}
