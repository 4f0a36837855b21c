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
