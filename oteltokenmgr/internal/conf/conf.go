// Package conf holds the options of package oteltokenmgr, so that its
// subpackages can read and add to them.
package conf

import (
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// Config is what the options set.
type Config struct {
	MeterProvider  metric.MeterProvider // nil: otel.GetMeterProvider()
	TracerProvider trace.TracerProvider // nil: otel.GetTracerProvider()
	STS            bool                 // the Source calls STS: count its calls as tokenmgr.aws.sts.requests too
}
