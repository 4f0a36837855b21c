package oteltokenmgr

import (
	"context"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/oteltokenmgr/internal/conf"
)

// scope names the instrumentation (meter and tracer).
const scope = "github.com/tokenmgr/tokenmgr/oteltokenmgr"

// Attribute keys.
const (
	keyCredential = attribute.Key("tokenmgr.credential")
	keyReason     = attribute.Key("tokenmgr.reason")
	keyOutcome    = attribute.Key("tokenmgr.outcome")
	keyErrorType  = attribute.Key("error.type")
	keyAddress    = attribute.Key("server.address")
	keyPort       = attribute.Key("server.port")
	keyCode       = attribute.Key("tokenmgr.code")
	keyReplayed   = attribute.Key("tokenmgr.replayed")
	keyCause      = attribute.Key("tokenmgr.cause")
	keyOperation  = attribute.Key("tokenmgr.store.operation")
	keyAttempts   = attribute.Key("tokenmgr.attempts")
	keyAttempt    = attribute.Key("tokenmgr.attempt")
	keyFromStore  = attribute.Key("tokenmgr.from_store")
)

// Outcomes of a refresh.
const (
	outcomeFetched = "fetched"
	outcomeStored  = "stored"
	outcomeFailed  = "failed"
)

// otelObserver holds the instruments and what the time-left gauge reads.
type otelObserver struct {
	tracer trace.Tracer

	refreshes, tokenRequests, rejections, replays, heldOff, storeErrors, sts metric.Int64Counter
	duration, lockWait                                                       metric.Float64Histogram

	mu     sync.Mutex
	expiry map[string]time.Time // per credential: the expiry of the token in service; zero: none
}

// spanKey carries the refresh's span from RefreshStart to the funcs of the
// same refresh: the context may hold another span (a caller's) when
// RefreshStart did not run, which must not be ended here.
type spanKey struct{}

// observers are the otelObservers made so far, by providers: each has a
// gauge callback that lives as long as its MeterProvider, so a program
// instrumenting a Client per tenant must not add one per Client.
var observers sync.Map // conf.Config (providers resolved) → *otelObserver

// shared returns the otelObserver of c's providers, made on first use.
func shared(c conf.Config) *otelObserver {
	if c.MeterProvider == nil {
		c.MeterProvider = otel.GetMeterProvider()
	}
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	if !reflect.TypeOf(c.MeterProvider).Comparable() || !reflect.TypeOf(c.TracerProvider).Comparable() {
		return newObserver(c) // cannot be a map key: one of its own
	}
	if o, ok := observers.Load(c); ok {
		return o.(*otelObserver)
	}
	o, _ := observers.LoadOrStore(c, newObserver(c))
	return o.(*otelObserver)
}

func newObserver(c conf.Config) *otelObserver {
	mp, tp := c.MeterProvider, c.TracerProvider
	m := mp.Meter(scope)
	o := &otelObserver{tracer: tp.Tracer(scope), expiry: map[string]time.Time{}}
	counter := func(name, unit, desc string) metric.Int64Counter {
		c, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if err != nil {
			otel.Handle(err)
		}
		return c
	}
	o.refreshes = counter("tokenmgr.refreshes", "{refresh}", "Token refreshes, by reason and outcome.")
	o.tokenRequests = counter("tokenmgr.token.requests", "{request}", "Requests to the token endpoint; error.type is set on failures.")
	o.rejections = counter("tokenmgr.rejections", "{rejection}", "Requests a resource server rejected for their token.")
	o.replays = counter("tokenmgr.replays", "{request}", "Rejected requests sent again with a fresh token.")
	o.heldOff = counter("tokenmgr.held_off", "{request}", "Calls answered without a refresh: a refresh failed moments ago (cooldown), or the host rejects every token (damping).")
	o.storeErrors = counter("tokenmgr.store.errors", "{error}", "Store operations that failed.")
	if c.STS {
		o.sts = counter("tokenmgr.aws.sts.requests", "{request}", "AssumeRoleWithWebIdentity calls to AWS STS; error.type is set on failures.")
	}
	var err error
	o.duration, err = m.Float64Histogram("tokenmgr.refresh.duration", metric.WithUnit("s"),
		metric.WithDescription("How long refreshes took, store and retries included."),
		metric.WithExplicitBucketBoundaries(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
	if err != nil {
		otel.Handle(err)
	}
	o.lockWait, err = m.Float64Histogram("tokenmgr.store.lock_wait", metric.WithUnit("s"),
		metric.WithDescription("How long refreshes waited for the Store's lock (a Redis lease, a file lock): another process refreshing for all."),
		metric.WithExplicitBucketBoundaries(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60))
	if err != nil {
		otel.Handle(err)
	}
	_, err = m.Float64ObservableGauge("tokenmgr.token.time_left", metric.WithUnit("s"),
		metric.WithDescription("Time until the token in service expires; 0 when a refresh left none in service."),
		metric.WithFloat64Callback(o.observeTimeLeft))
	if err != nil {
		otel.Handle(err)
	}
	return o
}

func (o *otelObserver) observer() *tokenmgr.Observer {
	return &tokenmgr.Observer{
		RefreshStart: o.refreshStart,
		RefreshDone:  o.refreshDone,
		TokenRequest: o.tokenRequest,
		Rejected:     o.rejected,
		HeldOff:      o.heldOffCall,
		StoreError:   o.storeError,
		StoreLocked:  o.storeLocked,
		Closed:       o.closed,
	}
}

func (o *otelObserver) observeTimeLeft(_ context.Context, obs metric.Float64Observer) error {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	for key, exp := range o.expiry {
		left := 0.0
		if !exp.IsZero() {
			left = max(exp.Sub(now).Seconds(), 0)
		}
		obs.Observe(left, metric.WithAttributes(keyCredential.String(key)))
	}
	return nil
}

func (o *otelObserver) refreshStart(ctx context.Context, key string, reason tokenmgr.RefreshReason) context.Context {
	opts := []trace.SpanStartOption{
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(keyCredential.String(key), keyReason.String(string(reason))),
	}
	if reason == tokenmgr.ReasonEarly {
		// In the background: the request that found the token stale
		// does not wait for it.
		opts = append(opts, trace.WithNewRoot())
		if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
			opts = append(opts, trace.WithLinks(trace.Link{SpanContext: sc}))
		}
	}
	ctx, span := o.tracer.Start(ctx, "tokenmgr.refresh", opts...)
	return context.WithValue(ctx, spanKey{}, span)
}

func refreshSpan(ctx context.Context) trace.Span {
	s, _ := ctx.Value(spanKey{}).(trace.Span)
	return s
}

func (o *otelObserver) refreshDone(ctx context.Context, ev tokenmgr.RefreshEvent) {
	outcome := outcomeFetched
	switch {
	case ev.Err != nil:
		outcome = outcomeFailed
	case ev.Stored:
		outcome = outcomeStored
	}
	et := errorType(ev.Err)
	attrs := []attribute.KeyValue{keyCredential.String(ev.Key), keyReason.String(string(ev.Reason)), keyOutcome.String(outcome), keyErrorType.String(et)}
	if et == "" {
		attrs = attrs[:3]
	}
	set := metric.WithAttributeSet(attribute.NewSet(attrs...)) // sorts attrs
	o.refreshes.Add(ctx, 1, set)
	o.duration.Record(ctx, ev.Duration.Seconds(), set)

	o.mu.Lock()
	switch {
	case ev.Err == nil && ev.Expiry.IsZero():
		delete(o.expiry, ev.Key) // a token without expiry: no time left to report
	case ev.Err == nil:
		o.expiry[ev.Key] = ev.Expiry
	case ev.Reason != tokenmgr.ReasonEarly:
		// No token in service: a failed background refresh leaves the
		// one it was replacing in service.
		o.expiry[ev.Key] = time.Time{}
	}
	o.mu.Unlock()

	if span := refreshSpan(ctx); span != nil {
		span.SetAttributes(keyOutcome.String(outcome), keyAttempts.Int(ev.Attempts), keyFromStore.Bool(ev.Stored))
		if et != "" {
			span.SetAttributes(keyErrorType.String(et))
			span.SetStatus(codes.Error, et) // the type only: an error's text is no span's business
		}
		span.End()
	}
}

func (o *otelObserver) tokenRequest(ctx context.Context, key string, attempt int, err error) {
	et := errorType(err)
	attrs := []attribute.KeyValue{keyCredential.String(key), keyErrorType.String(et)}
	if et == "" {
		attrs = attrs[:1]
	}
	set := metric.WithAttributeSet(attribute.NewSet(attrs...))
	o.tokenRequests.Add(ctx, 1, set)
	if o.sts != nil {
		o.sts.Add(ctx, 1, set)
	}
	if span := refreshSpan(ctx); span != nil {
		ev := []attribute.KeyValue{keyAttempt.Int(attempt), keyErrorType.String(et)}
		if et == "" {
			ev = ev[:1]
		}
		span.AddEvent("tokenmgr.token_request", trace.WithAttributes(ev...))
	}
}

// hostAttrs splits the Observer's "host:port".
func hostAttrs(host string) []attribute.KeyValue {
	i := strings.LastIndexByte(host, ':')
	if i < 0 {
		return []attribute.KeyValue{keyAddress.String(host)}
	}
	p, err := strconv.Atoi(host[i+1:])
	if err != nil {
		return []attribute.KeyValue{keyAddress.String(host[:i])}
	}
	return []attribute.KeyValue{keyAddress.String(host[:i]), keyPort.Int(p)}
}

func (o *otelObserver) rejected(ctx context.Context, key, host, code string, replayed bool) {
	if code != "" {
		code = label(code)
	}
	h := hostAttrs(host)
	trace.SpanFromContext(ctx).AddEvent("tokenmgr.rejected", trace.WithAttributes(append(h, keyCode.String(code), keyReplayed.Bool(replayed))...))
	h = append(h, keyCredential.String(key))
	if replayed {
		o.replays.Add(ctx, 1, metric.WithAttributes(h...))
	}
	o.rejections.Add(ctx, 1, metric.WithAttributes(append(h, keyCode.String(code), keyReplayed.Bool(replayed))...))
}

func (o *otelObserver) heldOffCall(ctx context.Context, key, cause, host string) {
	ev := []attribute.KeyValue{keyCause.String(cause)}
	if host != "" {
		ev = append(ev, hostAttrs(host)...)
	}
	trace.SpanFromContext(ctx).AddEvent("tokenmgr.held_off", trace.WithAttributes(ev...))
	o.heldOff.Add(ctx, 1, metric.WithAttributes(append(ev, keyCredential.String(key))...))
}

func (o *otelObserver) storeError(ctx context.Context, key, op string, err error) {
	ev := []attribute.KeyValue{keyOperation.String(op), keyErrorType.String(errorType(err))}
	if span := refreshSpan(ctx); span != nil {
		span.AddEvent("tokenmgr.store_error", trace.WithAttributes(ev...))
	}
	o.storeErrors.Add(ctx, 1, metric.WithAttributes(append(ev, keyCredential.String(key))...))
}

func (o *otelObserver) storeLocked(ctx context.Context, key string, waited time.Duration) {
	o.lockWait.Record(ctx, waited.Seconds(), metric.WithAttributes(keyCredential.String(key)))
}

// closed stops the time-left gauge of a Client that has none in service
// any more: a closed Client's token must not look like one expiring.
func (o *otelObserver) closed(key string) {
	o.mu.Lock()
	delete(o.expiry, key)
	o.mu.Unlock()
}
