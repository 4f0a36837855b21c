package tokenmgr

import (
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/classify"
)

// classify.CheckDestination is the transport's rule, not a copy of it: for each URL
// it refuses exactly what the transport refuses, with the same error.
func TestCheckDestinationIsTheTransportRule(t *testing.T) {
	allowed := []string{"api.example.com", "*.svc.example"}
	c, err := New(Config{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "tok"}), AllowedHosts: allowed})
	require.NoError(t, err)
	defer c.Close()
	sent := errors.New("sent")
	tr := c.Transport(refusingBase(func(*http.Request) (*http.Response, error) { return nil, sent }))
	for _, tc := range []struct {
		url  string
		want error // nil: the token goes there
	}{
		{"https://api.example.com/v1", nil},
		{"https://API.example.com/v1", nil},
		{"https://api.example.com./v1", ErrHostNotAllowed}, // the drift doctor once had
		{"https://a.svc.example/x", nil},
		{"https://svc.example/x", ErrHostNotAllowed},
		{"https://evil-api.example.com/", ErrHostNotAllowed},
		{"http://api.example.com/", ErrInsecureHTTP},
	} {
		u, err := url.Parse(tc.url)
		require.NoError(t, err)
		got := classify.CheckDestination(u, allowed, false)
		req, _ := http.NewRequest(http.MethodGet, tc.url, nil)
		_, terr := tr.RoundTrip(req)
		if tc.want == nil {
			assert.NoError(t, got, tc.url)
			assert.ErrorIs(t, terr, sent, "%s: the transport refused what classify.CheckDestination allows", tc.url)
			continue
		}
		assert.ErrorIs(t, got, tc.want, tc.url)
		assert.ErrorIs(t, terr, tc.want, tc.url)
		assert.Equal(t, terr.Error(), got.Error(), tc.url)
	}
	assert.ErrorIs(t, classify.CheckDestination(&url.URL{Path: "/x"}, nil, false), classify.ErrNotAbsoluteURL)
	assert.Error(t, classify.CheckDestination(&url.URL{Scheme: "https", Host: "h"}, []string{"bad/host"}, false))
	assert.NoError(t, classify.CheckDestination(&url.URL{Scheme: "http", Host: "127.0.0.1:8080"}, nil, false))
	assert.NoError(t, classify.CheckDestination(&url.URL{Scheme: "http", Host: "h"}, nil, true))
}

// refusingBase is a base transport that answers every request with an
// error: the test sees whether the token request got that far.
type refusingBase func(*http.Request) (*http.Response, error)

func (f refusingBase) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
