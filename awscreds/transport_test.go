package awscreds

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr"
)

type echo struct {
	Service     string `json:"service"`
	Method      string `json:"method"`
	Path        string `json:"path"`
	AccessKeyID string `json:"access_key_id"`
	BodySHA256  string `json:"body_sha256"`
}

func readEcho(t *testing.T, resp *http.Response) echo {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	var e echo
	require.NoError(t, json.Unmarshal(b, &e))
	return e
}

// Every request is signed (the test service verifies SigV4 from the
// spec); after a revocation, a POST is replayed once with fresh
// credentials, a new signature and its body intact, per service error
// shape: JSON (UnrecognizedClientException), S3 (InvalidToken, and
// ExpiredToken), query XML (InvalidClientTokenId).
func TestTransportSignsAndReplays(t *testing.T) {
	for _, tc := range []struct {
		service string
		expire  bool
	}{{"execute-api", false}, {"s3", false}, {"s3", true}, {"sts", false}} {
		t.Run(tc.service, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			hc := &http.Client{Transport: f.p.Transport(f.srv.Client().Transport, tc.service, "eu-west-1")}
			const body = `{"TableName":"Music"}`
			post := func() *http.Response {
				req, err := http.NewRequest("POST", f.srv.URL+"/things/a%20b?x=1&a=2", strings.NewReader(body))
				require.NoError(t, err)
				req.Header.Set("Content-Type", "application/x-amz-json-1.0")
				resp, err := hc.Do(req)
				require.NoError(t, err)
				return resp
			}
			e := readEcho(t, post())
			assert.Equal(t, tc.service, e.Service)
			assert.Equal(t, "/things/a b", e.Path)
			assert.Equal(t, hashHex(body), e.BodySHA256)
			first := e.AccessKeyID

			if tc.expire {
				f.srv.ExpireAll()
			} else {
				f.srv.RevokeAll()
			}
			e = readEcho(t, post())
			assert.NotEqual(t, first, e.AccessKeyID, "replayed with fresh credentials")
			assert.Equal(t, hashHex(body), e.BodySHA256, "the body was sent again intact")
			assert.EqualValues(t, 2, f.srv.AssumeCalls())
			assert.EqualValues(t, 1, f.p.Stats().Replays)
			assert.EqualValues(t, 1, f.srv.Rejected())
			assert.EqualValues(t, 2, f.srv.SignedOK())
		})
	}
}

// The caller's request is not modified by signing.
func TestTransportLeavesCallerRequestAlone(t *testing.T) {
	f := newFixture(t, nil, nil)
	hc := &http.Client{Transport: f.p.Transport(f.srv.Client().Transport, "execute-api", "eu-west-1")}
	req, err := http.NewRequest("GET", f.srv.URL+"/x?b=2&a=1", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "mine")
	resp, err := hc.Do(req)
	require.NoError(t, err)
	readEcho(t, resp)
	assert.Equal(t, "b=2&a=1", req.URL.RawQuery)
	assert.Equal(t, []string{"mine"}, req.Header["Authorization"])
	assert.Empty(t, req.Header.Get("X-Amz-Date"))
}

// A body that cannot be rewound cannot be hashed and sent: an error
// saying so, and nothing sent.
func TestTransportNonRewindableBody(t *testing.T) {
	f := newFixture(t, nil, nil)
	hc := &http.Client{Transport: f.p.Transport(f.srv.Client().Transport, "execute-api", "eu-west-1")}
	req, err := http.NewRequest("POST", f.srv.URL+"/x", io.NopCloser(strings.NewReader("body")))
	require.NoError(t, err)
	_, err = hc.Do(req)
	require.ErrorIs(t, err, ErrBodyNotRewindable)
	assert.Zero(t, f.srv.SignedOK()+f.srv.Rejected())

	// With the payload hash given by the caller, it goes (and is not replayed).
	req, err = http.NewRequest("POST", f.srv.URL+"/x", io.NopCloser(strings.NewReader("body")))
	require.NoError(t, err)
	req.Header.Set("X-Amz-Content-Sha256", hashHex("body"))
	resp, err := hc.Do(req)
	require.NoError(t, err)
	assert.Equal(t, hashHex("body"), readEcho(t, resp).BodySHA256)
}

// RequestExpired (a request that reached the service too late, or a clock
// far off) is replayed once with a new signature; when the replay fails
// the same way, replays are damped.
func TestTransportRequestExpired(t *testing.T) {
	f := newFixture(t, nil, nil)
	hc := &http.Client{Transport: f.p.Transport(f.srv.Client().Transport, "execute-api", "eu-west-1")}
	get := func() *http.Response {
		resp, err := hc.Get(f.srv.URL + "/x")
		require.NoError(t, err)
		return resp
	}
	readEcho(t, get())
	f.srv.Now = func() time.Time { return time.Now().Add(20 * time.Minute) }
	for range 3 {
		resp := get()
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Contains(t, string(b), "RequestExpired")
	}
	assert.EqualValues(t, 1, f.p.Stats().Replays, "one replay, then damped")
	assert.EqualValues(t, 2, f.srv.AssumeCalls())
}

// Credentials never go over plain http to another host.
func TestTransportRefusesPlainHTTP(t *testing.T) {
	f := newFixture(t, nil, nil)
	hc := &http.Client{Transport: f.p.Transport(nil, "execute-api", "eu-west-1")}
	_, err := hc.Get("http://api.example.com/x")
	require.ErrorIs(t, err, tokenmgr.ErrInsecureHTTP)
	assert.Zero(t, f.srv.AssumeCalls())
}

func TestPayloadHash(t *testing.T) {
	r, _ := http.NewRequest("GET", "https://x/", nil)
	h, err := payloadHash(r)
	require.NoError(t, err)
	assert.Equal(t, hashHex(""), h)
	r, _ = http.NewRequest("PUT", "https://x/", strings.NewReader("abc"))
	h, err = payloadHash(r)
	require.NoError(t, err)
	assert.Equal(t, hashHex("abc"), h)
	r.GetBody = func() (io.ReadCloser, error) { return nil, errors.New("gone") }
	_, err = payloadHash(r)
	assert.ErrorContains(t, err, "gone")
}
