package oteltokenmgr_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/oteltokenmgr"
)

// benchBase answers every request at once, so that the benchmark
// measures the transport.
type benchBase struct{ resp *http.Response }

func (b benchBase) RoundTrip(*http.Request) (*http.Response, error) { return b.resp, nil }

// benchTransports returns the transports of two Clients on the same
// token, without and with oteltokenmgr.
func benchTransports(b *testing.B) (plain, instrumented http.RoundTripper) {
	base := benchBase{resp: &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody}}
	tok := &oauth2.Token{AccessToken: "at-7c1e0f5a9b3d4e2f8a6b0c1d2e3f4a5b", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
	var rts []http.RoundTripper
	for _, instrument := range []bool{false, true} {
		cfg := tokenmgr.Config{Source: oauth2.StaticTokenSource(tok)}
		if instrument {
			oteltokenmgr.Instrument(&cfg, newTelemetry().opts...)
		}
		c, err := tokenmgr.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { c.Close() })
		if _, err := c.Token(context.Background()); err != nil {
			b.Fatal(err)
		}
		rts = append(rts, c.Transport(base))
	}
	return rts[0], rts[1]
}

// BenchmarkRoundTripInterleaved sends batches of 64 requests through the
// plain and the instrumented transport in turn, so that both meet the
// same load of a shared machine, and reports each one's ns/op and their
// ratio (instrumented/plain).
func BenchmarkRoundTripInterleaved(b *testing.B) {
	plain, instrumented := benchTransports(b)
	req, _ := http.NewRequest(http.MethodGet, "https://api.example.com/v1/x", nil)
	var sum [2]time.Duration
	rts := [2]http.RoundTripper{plain, instrumented}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for k, rt := range rts {
			start := time.Now()
			for range 64 {
				if _, err := rt.RoundTrip(req); err != nil {
					b.Fatal(err)
				}
			}
			sum[k] += time.Since(start)
		}
	}
	n := float64(b.N * 64)
	b.ReportMetric(float64(sum[0].Nanoseconds())/n, "plain-ns/op")
	b.ReportMetric(float64(sum[1].Nanoseconds())/n, "instrumented-ns/op")
	b.ReportMetric(float64(sum[1])/float64(sum[0]), "ratio")
}

// BenchmarkRoundTrip is one authorised request with a token in service
// through a Client's transport, without and with oteltokenmgr installed
// (a real SDK MeterProvider and TracerProvider recording everything),
// side by side: the instrumentation must cost nothing until a refresh or
// a rejection.
func BenchmarkRoundTrip(b *testing.B) {
	base := benchBase{resp: &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody}}
	tok := &oauth2.Token{AccessToken: "at-7c1e0f5a9b3d4e2f8a6b0c1d2e3f4a5b", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
	for _, instrumented := range []bool{false, true} {
		name := "plain"
		cfg := tokenmgr.Config{Source: oauth2.StaticTokenSource(tok)}
		if instrumented {
			name = "instrumented"
			oteltokenmgr.Instrument(&cfg, newTelemetry().opts...)
		}
		b.Run(name, func(b *testing.B) {
			c, err := tokenmgr.New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Token(context.Background()); err != nil {
				b.Fatal(err)
			}
			rt := c.Transport(base)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				req, _ := http.NewRequest(http.MethodGet, "https://api.example.com/v1/x", nil)
				for pb.Next() {
					if resp, err := rt.RoundTrip(req); err != nil || resp.StatusCode != http.StatusOK {
						b.Errorf("round trip: %v", err)
						return
					}
				}
			})
		})
	}
}
