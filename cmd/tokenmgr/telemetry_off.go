//go:build !otel

package main

// Without -tags otel the binary exports nothing and links no OpenTelemetry
// package (see telemetry.go for why); these are telemetry.go's no-ops.

import (
	"context"
	"io"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/awscreds"
)

const telemetryBuilt = false

type telemetry struct{}

func startTelemetry(context.Context, func(string) (string, bool), io.Writer) *telemetry { return nil }

func (*telemetry) instrument(*tokenmgr.Config) {}
func (*telemetry) instrumentAWS(*awscreds.Env) {}
func (*telemetry) shutdown()                   {}
func (*telemetry) command(ctx context.Context, _ string) (context.Context, func(int)) {
	return ctx, func(int) {}
}
