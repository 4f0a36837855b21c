package peers_test

// Hot-path benchmarks against the two peers a Go service would otherwise
// use: golang.org/x/oauth2 (oauth2.Transport over a ReuseTokenSource) and
// cloud.google.com/go/auth (httptransport's auth middleware over a cached
// token provider). Every side holds a valid one-hour token, so these
// measure only serving the cached token and attaching it to a request.
//
//	go test -run '^$' -bench . -benchmem -count 5 | tee new.txt
//	benchstat new.txt

import (
	"context"
	"net/http"
	"testing"
	"time"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/auth/httptransport"
	"golang.org/x/oauth2"

	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr"
)

const benchURL = "https://api.example.com/v1/x"

// benchNoop is a base transport that answers every request at once with
// the same canned response, so only the auth layer above it is measured.
type benchNoop struct{ resp *http.Response }

func newBenchNoop() benchNoop {
	return benchNoop{resp: &http.Response{
		Status:     "200 OK",
		StatusCode: http.StatusOK,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header:     http.Header{},
		Body:       http.NoBody,
	}}
}

func (n benchNoop) RoundTrip(*http.Request) (*http.Response, error) { return n.resp, nil }

// benchOAuth2Token is a one-hour token as x/oauth2 sources return it.
func benchOAuth2Token() *oauth2.Token {
	return &oauth2.Token{
		AccessToken: "at-7c1e0f5a9b3d4e2f8a6b0c1d2e3f4a5b",
		TokenType:   "Bearer",
		ExpiresIn:   3600,
		Expiry:      time.Now().Add(time.Hour),
	}
}

// googleProvider adapts a function to auth.TokenProvider.
type googleProvider func(context.Context) (*auth.Token, error)

func (f googleProvider) Token(ctx context.Context) (*auth.Token, error) { return f(ctx) }

// googleStatic is an uncached provider that returns a fresh one-hour token
// on every call, as a real token endpoint would.
func googleStatic() auth.TokenProvider {
	return googleProvider(func(context.Context) (*auth.Token, error) {
		t := benchOAuth2Token()
		return &auth.Token{Value: t.AccessToken, Type: t.TokenType, Expiry: t.Expiry}, nil
	})
}

// benchSides builds the three round trippers over base, each warmed up
// (its token fetched) so the loop measures the cached path only.
func benchSides(b *testing.B, base http.RoundTripper) (tm, oa, gg http.RoundTripper) {
	b.Helper()
	c, err := tokenmgr.New(tokenmgr.Config{Source: oauth2.StaticTokenSource(benchOAuth2Token())})
	require.NoError(b, err)
	b.Cleanup(func() { c.Close() })
	tm = c.Transport(base)

	oa = &oauth2.Transport{Source: oauth2.ReuseTokenSource(nil, oauth2.StaticTokenSource(benchOAuth2Token())), Base: base}

	creds := auth.NewCredentials(&auth.CredentialsOptions{TokenProvider: auth.NewCachedTokenProvider(googleStatic(), nil)})
	hc := &http.Client{Transport: base}
	require.NoError(b, httptransport.AddAuthorizationMiddleware(hc, creds))
	gg = hc.Transport

	for _, rt := range []http.RoundTripper{tm, oa, gg} {
		req, _ := http.NewRequest(http.MethodGet, benchURL, nil)
		resp, err := rt.RoundTrip(req)
		require.NoError(b, err, "warm-up round trip")
		require.Equal(b, http.StatusOK, resp.StatusCode, "warm-up round trip")
	}
	return tm, oa, gg
}

// The loops check each result with a plain if, not testify: an assertion
// call in the measured loop would be part of what is measured.

// benchRoundTrip sends GET benchURL through rt from every parallel
// goroutine, one request value per goroutine (transports must not modify
// it, so it is reused).
func benchRoundTrip(b *testing.B, rt http.RoundTripper, header http.Header) {
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		req, err := http.NewRequest(http.MethodGet, benchURL, nil)
		if err != nil {
			b.Error(err)
			return
		}
		for k, v := range header {
			req.Header[k] = v
		}
		for pb.Next() {
			resp, err := rt.RoundTrip(req)
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Errorf("round trip: %v", err)
				return
			}
		}
	})
}

// BenchmarkRoundTrip is one authorised request through each library's
// transport to a base that answers at once.
func BenchmarkRoundTrip(b *testing.B) {
	tm, oa, gg := benchSides(b, newBenchNoop())
	b.Run("tokenmgr", func(b *testing.B) { benchRoundTrip(b, tm, nil) })
	b.Run("oauth2", func(b *testing.B) { benchRoundTrip(b, oa, nil) })
	b.Run("google", func(b *testing.B) { benchRoundTrip(b, gg, nil) })
	b.Run("floor", func(b *testing.B) { benchRoundTrip(b, floorTransport{newBenchNoop()}, nil) })
}

// floorTransport is the least a RoundTripper that adds a token can do,
// since it must not modify the caller's request: a shallow clone of the
// request with a header map of its own and one header set.
type floorTransport struct{ base http.RoundTripper }

func (f floorTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r2 := new(http.Request)
	*r2 = *req
	h := make(http.Header, len(req.Header)+1)
	for k, v := range req.Header {
		h[k] = v
	}
	h["Authorization"] = floorAuth
	r2.Header = h
	return f.base.RoundTrip(r2)
}

var floorAuth = []string{"Bearer " + benchOAuth2Token().AccessToken}

// BenchmarkRoundTripHeaders is BenchmarkRoundTrip for a request that
// already carries a few headers, as real API clients send: the cost of
// copying them differs between the libraries.
func BenchmarkRoundTripHeaders(b *testing.B) {
	h := http.Header{
		"Accept":       {"application/json"},
		"User-Agent":   {"svc/1.4.2 go1.26"},
		"X-Request-Id": {"3f0b1c2d-4e5f-6a7b-8c9d-0e1f2a3b4c5d"},
	}
	tm, oa, gg := benchSides(b, newBenchNoop())
	b.Run("tokenmgr", func(b *testing.B) { benchRoundTrip(b, tm, h) })
	b.Run("oauth2", func(b *testing.B) { benchRoundTrip(b, oa, h) })
	b.Run("google", func(b *testing.B) { benchRoundTrip(b, gg, h) })
}

// BenchmarkToken is the cached-token hot path alone: Client.Token against
// oauth2.ReuseTokenSource.Token and the Google cached provider's Token.
func BenchmarkToken(b *testing.B) {
	ctx := context.Background()

	b.Run("tokenmgr", func(b *testing.B) {
		c, err := tokenmgr.New(tokenmgr.Config{Source: oauth2.StaticTokenSource(benchOAuth2Token())})
		require.NoError(b, err)
		defer c.Close()
		_, err = c.Token(ctx)
		require.NoError(b, err)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if tok, err := c.Token(ctx); err != nil || tok == nil {
					b.Errorf("Token: %v", err)
					return
				}
			}
		})
	})

	b.Run("oauth2", func(b *testing.B) {
		ts := oauth2.ReuseTokenSource(nil, oauth2.StaticTokenSource(benchOAuth2Token()))
		_, err := ts.Token()
		require.NoError(b, err)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if tok, err := ts.Token(); err != nil || tok == nil {
					b.Errorf("Token: %v", err)
					return
				}
			}
		})
	})

	b.Run("google", func(b *testing.B) {
		tp := auth.NewCachedTokenProvider(googleStatic(), nil)
		_, err := tp.Token(ctx)
		require.NoError(b, err)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if tok, err := tp.Token(ctx); err != nil || tok == nil {
					b.Errorf("Token: %v", err)
					return
				}
			}
		})
	})
}
