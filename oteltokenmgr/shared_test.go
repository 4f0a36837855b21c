package oteltokenmgr

import (
	"testing"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/tokenmgr/tokenmgr/oteltokenmgr/internal/conf"
)

func config(opts ...Option) conf.Config {
	var c conf.Config
	for _, o := range opts {
		o(&c)
	}
	return c
}

// TestObserversShared: instrumenting many Clients with the same providers
// makes one set of instruments (one gauge callback); other providers get
// their own.
func TestObserversShared(t *testing.T) {
	mp := sdkmetric.NewMeterProvider()
	a := shared(config(WithMeterProvider(mp)))
	b := shared(config(WithMeterProvider(mp)))
	if a != b {
		t.Fatal("the same providers made two observers")
	}
	if c := shared(config(WithMeterProvider(sdkmetric.NewMeterProvider()))); c == a {
		t.Fatal("other providers share an observer")
	}
	if d := shared(config(WithMeterProvider(mp), func(c *conf.Config) { c.STS = true })); d == a {
		t.Fatal("an STS observer shares a bearer one")
	}
}
