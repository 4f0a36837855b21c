//go:build otel

package main

// OpenTelemetry export, on when OpenTelemetry's own OTEL_* variables ask
// for it (telemetry_env.go), in a binary built with -tags otel. A run of
// tokenmgr lives for one refresh: the spans and metrics are exported once,
// when the command has finished, over OTLP/HTTP, in one attempt bounded
// by flushTimeout, and a failure is a warning. With none of the variables
// set, nothing of this runs: no exporter, goroutine or connection.
//
// Why a build tag: the OTLP exporters link the SDK, protobuf and, through
// their shared configuration and go.opentelemetry.io/proto/otlp's
// collector packages, gRPC, even for HTTP. That doubles the binary and
// costs every run their package initialisation and page faults
// (BenchmarkTokenCommand, file store: about 3 ms more a run on a quiet
// machine, 9 ms on a loaded one), variables set or not.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/awscreds"
	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/oteltokenmgr"
	"github.com/tokenmgr/tokenmgr/oteltokenmgr/otelaws"
)

// flushTimeout bounds the export at exit: a collector that does not
// answer delays a run by this much at most.
const flushTimeout = 2 * time.Second

// telemetryBuilt: this binary can export.
const telemetryBuilt = true

// telemetry is the export of one run; nil when the variables ask for none.
type telemetry struct {
	tp *sdktrace.TracerProvider // nil without traces
	mp *sdkmetric.MeterProvider // nil without metrics

	traceURL, metricURL string // where each goes, without credentials, for warnings
	redact              *strings.Replacer

	mu       sync.Mutex
	reported map[string]bool // the warnings printed, once each
	stderr   io.Writer
}

// startTelemetry sets up the export the OTEL_* variables ask for, read
// through lookup; the exporters read the rest of their settings from the
// process's environment. It returns nil when none is asked for.
func startTelemetry(ctx context.Context, lookup func(string) (string, bool), stderr io.Writer) *telemetry {
	if v, _ := lookup("OTEL_SDK_DISABLED"); strings.EqualFold(strings.TrimSpace(v), "true") {
		return nil
	}
	traces, warnT := signalWanted(lookup, "TRACES")
	metrics, warnM := signalWanted(lookup, "METRICS")
	for _, w := range []string{warnT, warnM} {
		if w != "" {
			fmt.Fprintln(stderr, "tokenmgr: warning: "+w)
		}
	}
	if !traces && !metrics {
		return nil
	}
	t := &telemetry{stderr: stderr, reported: map[string]bool{}, redact: headerRedactor(lookup)}
	if p, _ := lookup("OTEL_EXPORTER_OTLP_PROTOCOL"); p != "" && p != "http/protobuf" {
		t.warn("OTEL_EXPORTER_OTLP_PROTOCOL=" + display.Cut(p, 40) + ": tokenmgr exports over http/protobuf only")
	}
	// Errors the SDK reports outside the calls below (a span dropped, a
	// bad variable) are warnings too.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) { t.warn("OpenTelemetry: " + err.Error()) }))
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "tokenmgr")),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
		resource.WithTelemetrySDK())
	if err != nil {
		t.warn("OpenTelemetry resource: " + err.Error()) // res is still usable
	}
	// One attempt: a one-shot process cannot wait for retries.
	if traces {
		t.traceURL = otlpURL(lookup, "TRACES", "/v1/traces")
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithRetry(otlptracehttp.RetryConfig{Enabled: false}), otlptracehttp.WithTimeout(flushTimeout))
		if err != nil {
			t.warn(fmt.Sprintf("traces to %s: %v", t.traceURL, err))
		} else {
			t.tp = sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
		}
	}
	if metrics {
		t.metricURL = otlpURL(lookup, "METRICS", "/v1/metrics")
		exp, err := otlpmetrichttp.New(ctx, otlpmetrichttp.WithRetry(otlpmetrichttp.RetryConfig{Enabled: false}), otlpmetrichttp.WithTimeout(flushTimeout))
		if err != nil {
			t.warn(fmt.Sprintf("metrics to %s: %v", t.metricURL, err))
		} else {
			// The reader's interval is longer than any run: the export is
			// the one at exit.
			t.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(time.Hour))), sdkmetric.WithResource(res))
		}
	}
	if t.tp == nil && t.mp == nil {
		return nil
	}
	return t
}

// options are the oteltokenmgr options of t's providers.
func (t *telemetry) options() []oteltokenmgr.Option {
	var opts []oteltokenmgr.Option
	if t.tp != nil {
		opts = append(opts, oteltokenmgr.WithTracerProvider(t.tp))
	} else {
		opts = append(opts, oteltokenmgr.WithTracerProvider(tracenoop.NewTracerProvider()))
	}
	if t.mp != nil {
		opts = append(opts, oteltokenmgr.WithMeterProvider(t.mp))
	} else {
		opts = append(opts, oteltokenmgr.WithMeterProvider(metricnoop.NewMeterProvider()))
	}
	return opts
}

// instrument has cfg's Client report to t; it does nothing when t is nil.
func (t *telemetry) instrument(cfg *tokenmgr.Config) {
	if t != nil {
		oteltokenmgr.Instrument(cfg, t.options()...)
	}
}

// instrumentAWS has the Provider env makes report to t (nothing when t
// is nil). With a token file, its token requests are STS calls and
// otelaws counts them as such; without one, the web identity Client shares
// the Observer and its token requests are not STS calls (see otelaws).
func (t *telemetry) instrumentAWS(env *awscreds.Env) {
	if t == nil {
		return
	}
	if env.WebIdentityTokenFile == "" {
		env.Observer = oteltokenmgr.NewObserver(t.options()...)
		return
	}
	cfg := awscreds.Config{Observer: env.Observer}
	otelaws.Instrument(&cfg, t.options()...)
	env.Observer = cfg.Observer
}

// command starts the span of a whole command, the parent of the refresh
// it makes; end ends it with the exit code. Without traces it returns ctx.
func (t *telemetry) command(ctx context.Context, name string) (context.Context, func(code int)) {
	if t == nil || t.tp == nil {
		return ctx, func(int) {}
	}
	ctx, span := t.tp.Tracer("github.com/tokenmgr/tokenmgr/cmd/tokenmgr").Start(ctx, "tokenmgr "+name)
	return ctx, func(code int) {
		span.SetAttributes(attribute.Int("process.exit.code", code))
		if code != exitOK {
			span.SetStatus(codes.Error, fmt.Sprintf("exit code %d", code))
		}
		span.End()
	}
}

// shutdown exports what was recorded and stops the providers, within
// flushTimeout; each failure is a warning naming where it went.
func (t *telemetry) shutdown() {
	if t == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	var wg sync.WaitGroup
	if t.tp != nil {
		wg.Go(func() {
			err := t.tp.ForceFlush(ctx)
			err = errors.Join(err, t.tp.Shutdown(ctx))
			t.exportErr("traces", t.traceURL, err)
		})
	}
	if t.mp != nil {
		wg.Go(func() {
			// Shutdown collects and exports once; a ForceFlush before it
			// would send the same cumulative sums twice.
			t.exportErr("metrics", t.metricURL, t.mp.Shutdown(ctx))
		})
	}
	wg.Wait()
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(error) {})) // nothing after the end
}

func (t *telemetry) exportErr(what, where string, err error) {
	if err != nil {
		t.warn(fmt.Sprintf("exporting %s to %s failed: %v", what, where, err))
	}
}

// warn prints msg once, on one line, with the values of the OTLP headers
// blanked: a collector's answer might quote them.
func (t *telemetry) warn(msg string) {
	msg = display.OneLine("tokenmgr: warning: " + t.redact.Replace(msg))
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.reported[msg] {
		t.reported[msg] = true
		fmt.Fprintln(t.stderr, msg)
	}
}

// headerRedactor blanks the values of the OTEL_EXPORTER_OTLP_*HEADERS
// variables, which may hold an API key, and the passwords of the
// endpoints' URLs.
func headerRedactor(lookup func(string) (string, bool)) *strings.Replacer {
	var pairs []string
	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"} {
		v, _ := lookup(name)
		if u, err := url.Parse(v); err == nil && u.User != nil {
			if pw, ok := u.User.Password(); ok && len(pw) >= 4 {
				pairs = append(pairs, pw, "[redacted]")
			}
		}
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_METRICS_HEADERS"} {
		v, _ := lookup(name)
		for h := range strings.SplitSeq(v, ",") {
			_, val, _ := strings.Cut(h, "=")
			for _, s := range []string{strings.TrimSpace(val), unescape(strings.TrimSpace(val))} {
				if len(s) >= 4 {
					pairs = append(pairs, s, "[redacted]")
				}
			}
		}
	}
	return strings.NewReplacer(pairs...)
}

func unescape(s string) string {
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}
