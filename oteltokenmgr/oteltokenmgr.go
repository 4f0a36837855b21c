// Package oteltokenmgr reports what a tokenmgr Client does as
// OpenTelemetry metrics and traces: refreshes and their duration, the time
// left on the token in service, rejections by resource servers and the
// replays they cause, token requests and their failures, store errors and
// requests held off. One line sets it up:
//
//	oteltokenmgr.Instrument(&cfg) // before tokenmgr.New(cfg)
//	c, err := tokenmgr.NewFromEnv(oteltokenmgr.Instrumented()) // or from TOKENMGR_* variables
//
// It uses the global providers (otel.GetMeterProvider,
// otel.GetTracerProvider) unless [WithMeterProvider] or
// [WithTracerProvider] say otherwise; package otelaws does the same for
// an awscreds.Config. Only the OpenTelemetry API is imported: the program
// chooses the SDK and exporters.
//
// # Metrics
//
//	tokenmgr.refreshes          {refresh}   counter    credential, reason, outcome, error.type
//	tokenmgr.refresh.duration   s           histogram  credential, reason, outcome, error.type
//	tokenmgr.token.time_left    s           gauge      credential
//	tokenmgr.token.requests     {request}   counter    credential, error.type (on failures)
//	tokenmgr.rejections         {rejection} counter    credential, server.address, server.port, code, replayed
//	tokenmgr.replays            {request}   counter    credential, server.address, server.port
//	tokenmgr.held_off           {request}   counter    credential, cause, server.address, server.port
//	tokenmgr.store.errors       {error}     counter    credential, operation, error.type
//	tokenmgr.store.lock_wait    s           histogram  credential
//	tokenmgr.aws.sts.requests   {request}   counter    credential, error.type (otelaws only)
//
// The attributes are tokenmgr.credential (the Config.Key), tokenmgr.reason
// (initial, early, expired, invalid), tokenmgr.outcome (fetched, stored:
// adopted from the Store, failed), error.type (see below), server.address
// and server.port (the host that rejected a token), tokenmgr.code (the
// code it answered: InvalidClientTokenId, ExpiredToken, invalid_token),
// tokenmgr.replayed, tokenmgr.cause (cooldown, damping) and
// tokenmgr.store.operation (lock, load, save). None is ever a token, a
// secret, a URL or a user name.
//
// error.type names a failure by the rules tokenmgr retries by
// ([tokenmgr.TokenError] and [github.com/tokenmgr/tokenmgr/classify.NetworkFailure]): the OAuth error
// code (invalid_client, invalid_grant, …) or AWS code the endpoint
// answered, else 5xx, 4xx or rate_limited for an answer without one;
// refused, timeout, no_such_host, certificate, proxy or network when no
// answer came; bad_response, same_token, panic, canceled, closed,
// unavailable (a shared store's server is down) or other.
//
// tokenmgr.store.lock_wait is how long a refresh waited for the Store's
// lock (a Redis lease, a file lock): long waits are another process
// refreshing for the fleet, or stuck. A Redis outage is counted in
// tokenmgr.store.errors with error.type unavailable.
//
// tokenmgr.token.time_left is the time until the expiry of the last
// token a refresh put in service, per credential; 0 after a refresh that
// left none in service failed; none once the Client is closed. Alert when
// it nears 0.
//
// # Traces
//
// Each refresh is a span, tokenmgr.refresh, with the credential, reason,
// outcome, error.type, tokenmgr.attempts and tokenmgr.from_store. It is a
// child of the span of the call that needed the token (a Token call, or
// the request sent through the Client's transport) when it runs on a
// caller's behalf; a background refresh of a token still in service is a
// trace of its own, linked to the request that found the token stale.
// Token requests and store errors are events on it, and the refresh's
// token requests and store calls carry it in their context (an
// otelhttp transport in Config.TokenHTTPClient makes them its children).
// A rejection is an event, tokenmgr.rejected, on the rejected request's
// span, and so is a request held off.
package oteltokenmgr

import (
	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/oteltokenmgr/internal/conf"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Option configures [Instrument] and [NewObserver].
type Option func(*conf.Config)

// WithMeterProvider records the metrics with mp instead of the global
// MeterProvider.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *conf.Config) { c.MeterProvider = mp }
}

// WithTracerProvider records the spans with tp instead of the global
// TracerProvider.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *conf.Config) { c.TracerProvider = tp }
}

// Instrument sets cfg.Observer to report the Client's work as metrics and
// spans (see the package doc). An Observer already set is kept: both get
// every event.
func Instrument(cfg *tokenmgr.Config, opts ...Option) {
	cfg.Observer = chain(NewObserver(opts...), cfg.Observer)
}

// Instrumented returns a func that instruments a Config as [Instrument]
// does, for [tokenmgr.NewFromEnv]:
//
//	c, err := tokenmgr.NewFromEnv(oteltokenmgr.Instrumented())
//
// The program sets up the SDK and its exporters, which read OpenTelemetry's
// own OTEL_* variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_SERVICE_NAME,
// …), and installs them as the global providers.
func Instrumented(opts ...Option) func(*tokenmgr.Config) {
	return func(cfg *tokenmgr.Config) { Instrument(cfg, opts...) }
}

// NewObserver returns a [tokenmgr.Observer] reporting metrics and spans,
// for any configuration that carries one ([Instrument] sets it in a
// tokenmgr.Config). Calls with the same providers share one set of
// instruments, so a program may instrument as many Clients as it makes.
func NewObserver(opts ...Option) *tokenmgr.Observer {
	var c conf.Config
	for _, o := range opts {
		o(&c)
	}
	return shared(c).observer()
}
