// Command monitoring shows tokenmgr's OpenTelemetry metrics in Prometheus:
// it runs a demo OAuth server (tokenmgrtest) issuing short-lived tokens,
// a Client instrumented with oteltokenmgr, and calls the demo API through
// it every second, revoking the token in service now and then so that
// rejections and replays show too. The metrics are served for Prometheus
// to scrape at http://<listen>/metrics, through OpenTelemetry's Prometheus
// exporter.
//
//	go run . -listen 127.0.0.1:9464
//
// and scrape it (prometheus.yml):
//
//	scrape_configs:
//	  - job_name: tokenmgr
//	    static_configs: [{targets: ["127.0.0.1:9464"]}]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/oteltokenmgr"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

func main() {
	var o options
	flag.StringVar(&o.listen, "listen", "127.0.0.1:9464", "address to serve /metrics on")
	flag.DurationVar(&o.lifetime, "lifetime", 10*time.Second, "lifetime of the demo server's tokens")
	flag.DurationVar(&o.every, "every", time.Second, "time between API calls")
	flag.IntVar(&o.revokeEvery, "revoke-every", 7, "revoke the token in service before every n-th call (0: never)")
	flag.IntVar(&o.breakAfter, "break-after", 0, "the token endpoint fails (503) once it has issued n tokens (0: never), to see the alert fire")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, o, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

type options struct {
	listen      string
	lifetime    time.Duration
	every       time.Duration
	revokeEvery int
	breakAfter  int
}

// run serves the metrics and drives the Client until ctx ends. It writes
// the metrics URL to out once it listens.
func run(ctx context.Context, o options, out io.Writer) error {
	// OpenTelemetry's Prometheus exporter, on a registry of its own.
	reg := prometheus.NewRegistry()
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer mp.Shutdown(context.Background())
	otel.SetMeterProvider(mp) // for the rest of a program; the Client is given mp below

	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{Lifetime: o.lifetime})
	defer srv.Close()
	if o.breakAfter > 0 {
		srv.SetHook(func(w http.ResponseWriter, r *http.Request) bool {
			if r.URL.Path == "/token" && srv.Issued.Load() >= int64(o.breakAfter) {
				w.WriteHeader(http.StatusServiceUnavailable)
				return true
			}
			return false
		})
	}
	cfg := tokenmgr.Config{
		Source: tokenmgr.ClientCredentials(&clientcredentials.Config{
			ClientID: srv.ClientID, ClientSecret: srv.ClientSecret, TokenURL: srv.TokenURL(),
		}),
		Key: "demo",
	}
	// The one line. Without the option it takes the global MeterProvider;
	// the tests run two of these programs in one process.
	oteltokenmgr.Instrument(&cfg, oteltokenmgr.WithMeterProvider(mp))
	c, err := tokenmgr.New(cfg)
	if err != nil {
		return err
	}
	defer c.Close()

	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	defer hs.Close()
	fmt.Fprintf(out, "metrics on http://%s/metrics\n", ln.Addr())

	hc := c.HTTPClient()
	t := time.NewTicker(o.every)
	defer t.Stop()
	for n := 1; ; n++ {
		if o.revokeEvery > 0 && n%o.revokeEvery == 0 {
			if tok, err := c.Token(ctx); err == nil {
				srv.Revoke(tok.AccessToken) // the API rejects it: the transport replays with a fresh one
			}
		}
		if err := call(ctx, hc, srv.URL+"/api"); err != nil && !errors.Is(err, context.Canceled) {
			fmt.Fprintln(out, "call:", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func call(ctx context.Context, hc *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("API answered %s", resp.Status)
	}
	return nil
}
