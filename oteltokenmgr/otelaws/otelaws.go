// Package otelaws reports what an awscreds Provider does as OpenTelemetry
// metrics and traces, as package oteltokenmgr does for a tokenmgr Client:
//
//	otelaws.Instrument(&cfg) // before awscreds.New(cfg)
//
// The Provider's refreshes, rejections and store errors are reported
// under the oteltokenmgr names, and its calls to STS
// (AssumeRoleWithWebIdentity) are counted as tokenmgr.aws.sts.requests
// too, with error.type (the AWS error code: InvalidIdentityToken,
// ExpiredTokenException, …) on failures.
package otelaws

import (
	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/awscreds"
	"github.com/tokenmgr/tokenmgr/oteltokenmgr"
	"github.com/tokenmgr/tokenmgr/oteltokenmgr/internal/conf"
)

// Instrument sets cfg.Observer to report the Provider's work (see the
// package doc). An Observer already set is kept: both get every event.
//
// For an [awscreds.Env], set Env.Observer to an
// [oteltokenmgr.NewObserver]: Env.NewProvider gives it to the Provider
// and to the web identity Client alike, whose token requests are no STS
// calls, so tokenmgr.aws.sts.requests is not counted.
func Instrument(cfg *awscreds.Config, opts ...oteltokenmgr.Option) {
	tc := tokenmgr.Config{Observer: cfg.Observer}
	oteltokenmgr.Instrument(&tc, append(opts[:len(opts):len(opts)], func(c *conf.Config) { c.STS = true })...)
	cfg.Observer = tc.Observer
}
