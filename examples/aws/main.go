// Aws shows the transport recovering from AWS-style "bad token" answers:
// it refreshes the token and replays the request once, so the caller sees
// only the successful answer. Offline: an in-process OAuth 2.0 token server
// and a small AWS-like API that checks the bearer token and, for a token it
// does not accept, answers as two AWS services do:
//
//   - /sts: 403 with STS's XML <Code>InvalidClientTokenId</Code>
//   - /dynamodb: 400 with DynamoDB's JSON
//     {"__type":"com.amazon.coral.service#ExpiredTokenException",...}
//
// For each, the server revokes the token in service and the next request
// is replayed; the DynamoDB call is a POST whose body is sent again intact.
// Last, a POST whose body cannot be rewound (no GetBody) is not sent twice:
// the rejection comes back to the caller and the following request gets a
// new token. The example prints the replay counts and exits non-zero if
// any of that did not happen.
//
//	go run ./examples/aws
package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenmgr/tokenmgr"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// dynamoExpired is what DynamoDB answers (400) for an expired token.
const dynamoExpired = `{"__type":"com.amazon.coral.service#ExpiredTokenException","message":"The security token included in the request is expired"}`

const getItem = `{"TableName":"Music","Key":{"Artist":{"S":"No One You Know"}}}`

// awsAPI is the protected API. Tokens are checked against the token
// server, so Revoke there makes them fail here.
type awsAPI struct {
	tokens               *tokenmgrtest.Server
	requests, rejected   atomic.Int64
	stsReject, ddbReject atomic.Int64
}

func (a *awsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.requests.Add(1)
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	ok := a.tokens.Valid(tok)
	switch r.URL.Path {
	case "/sts":
		if !ok {
			a.rejected.Add(1)
			a.stsReject.Add(1)
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, tokenmgrtest.AWSInvalidClientTokenId)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		io.WriteString(w, `<GetCallerIdentityResponse><GetCallerIdentityResult><Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>`)
	case "/dynamodb":
		body, _ := io.ReadAll(r.Body)
		if !ok {
			a.rejected.Add(1)
			a.ddbReject.Add(1)
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, dynamoExpired)
			return
		}
		if string(body) != getItem {
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"__type":"com.amazon.coral.validate#ValidationException","message":"request body missing or damaged"}`)
			return
		}
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		io.WriteString(w, `{"Item":{"Artist":{"S":"No One You Know"}}}`)
	default:
		http.NotFound(w, r)
	}
}

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	ctx := context.Background()
	tokens := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer tokens.Close()
	api := &awsAPI{tokens: tokens}
	apiSrv := httptest.NewServer(api)
	defer apiSrv.Close()

	c, err := tokenmgr.New(tokenmgr.Config{
		Source: tokenmgr.ClientCredentials(&clientcredentials.Config{
			ClientID:     tokens.ClientID,
			ClientSecret: tokens.ClientSecret,
			TokenURL:     tokens.TokenURL(),
		}),
	})
	if err != nil {
		return err
	}
	defer c.Close()
	hc := c.HTTPClient()

	revoke := func() error {
		tok, err := c.Token(ctx)
		if err != nil {
			return err
		}
		tokens.Revoke(tok.AccessToken)
		return nil
	}
	do := func(req *http.Request) (int, string, error) {
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	sts := func() (*http.Request, error) {
		return http.NewRequest(http.MethodPost, apiSrv.URL+"/sts",
			strings.NewReader("Action=GetCallerIdentity&Version=2011-06-15"))
	}
	ddb := func(body io.Reader) (*http.Request, error) {
		req, err := http.NewRequest(http.MethodPost, apiSrv.URL+"/dynamodb", body)
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.0")
		req.Header.Set("X-Amz-Target", "DynamoDB_20120810.GetItem")
		return req, nil
	}

	// 1. STS: 403 InvalidClientTokenId (XML).
	if err := revoke(); err != nil {
		return err
	}
	req, err := sts()
	if err != nil {
		return err
	}
	status, _, err := do(req)
	if err != nil {
		return err
	}
	fmt.Printf("STS      after revocation: caller got %d; server rejected %d, replays so far %d\n",
		status, api.stsReject.Load(), c.Stats().Replays)
	if status != http.StatusOK || api.stsReject.Load() != 1 || c.Stats().Replays != 1 {
		return fmt.Errorf("STS: status %d, %d rejections, %d replays; want 200 after 1 rejection and 1 replay",
			status, api.stsReject.Load(), c.Stats().Replays)
	}

	// 2. DynamoDB: 400 ExpiredTokenException (JSON), a POST whose body
	// (a bytes.Reader, so the request has GetBody) is sent again.
	if err := revoke(); err != nil {
		return err
	}
	req, err = ddb(bytes.NewReader([]byte(getItem)))
	if err != nil {
		return err
	}
	status, body, err := do(req)
	if err != nil {
		return err
	}
	fmt.Printf("DynamoDB after revocation: caller got %d; server rejected %d, replays so far %d\n",
		status, api.ddbReject.Load(), c.Stats().Replays)
	if status != http.StatusOK || api.ddbReject.Load() != 1 || c.Stats().Replays != 2 {
		return fmt.Errorf("DynamoDB: status %d (%s), %d rejections, %d replays; want 200 after 1 rejection and 2 replays in all",
			status, body, api.ddbReject.Load(), c.Stats().Replays)
	}

	// 3. A body that cannot be rewound is never sent twice: the caller
	// gets the rejection, and the token is dropped so the next request
	// carries a new one.
	if err := revoke(); err != nil {
		return err
	}
	req, err = ddb(io.NopCloser(strings.NewReader(getItem))) // no GetBody
	if err != nil {
		return err
	}
	status, body, err = do(req)
	if err != nil {
		return err
	}
	notReplayed := status == http.StatusBadRequest && strings.Contains(body, "ExpiredTokenException")
	fmt.Printf("DynamoDB, one-shot body:   caller got %d ExpiredTokenException, not replayed: %t\n", status, notReplayed)
	if !notReplayed || c.Stats().Replays != 2 {
		return fmt.Errorf("one-shot body: status %d (%s), replays %d; want the 400 back and no replay",
			status, body, c.Stats().Replays)
	}
	req, err = ddb(bytes.NewReader([]byte(getItem)))
	if err != nil {
		return err
	}
	status, _, err = do(req)
	if err != nil {
		return err
	}
	fmt.Printf("DynamoDB, next request:    caller got %d with a new token\n", status)
	if status != http.StatusOK {
		return fmt.Errorf("the request after the one-shot body got %d, want 200", status)
	}

	st := c.Stats()
	fmt.Printf("API requests %d, rejected %d; tokens fetched %d, invalidated %d, requests replayed %d\n",
		api.requests.Load(), api.rejected.Load(), st.Fetches, st.Invalidations, st.Replays)
	if st.Replays != 2 || st.Fetches != 4 || api.rejected.Load() != 3 {
		return fmt.Errorf("want 2 replays, 4 fetches and 3 rejections; got %d, %d and %d",
			st.Replays, st.Fetches, api.rejected.Load())
	}
	return nil
}
