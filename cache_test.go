package tokenmgr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/record"
	"github.com/tokenmgr/tokenmgr/tokenmgrtest"
)

// apiKey is a credential that is not an OAuth token: a key and when it
// expires.
type apiKey struct {
	key     string
	expires time.Time
}

// apiKeyKind fetches apiKeys from srv's token endpoint and stores them
// as records.
func apiKeyKind(srv *tokenmgrtest.Server) Kind[apiKey] {
	src := ClientCredentials(ccConfig(srv)).(ContextSource)
	return Kind[apiKey]{
		Fetch: func(ctx context.Context) (apiKey, error) {
			tok, err := src.TokenContext(ctx)
			if err != nil {
				return apiKey{}, err
			}
			return apiKey{key: tok.AccessToken, expires: tok.Expiry}, nil
		},
		ID:     func(k apiKey) string { return k.key },
		Expiry: func(k apiKey) time.Time { return k.expires },
		Record: func(k apiKey, obtained time.Time) *record.Record {
			return &record.Record{V: record.Version, AccessToken: k.key, Expiry: k.expires, Obtained: obtained}
		},
		FromRecord: func(r *record.Record) (apiKey, bool, error) {
			return apiKey{key: r.AccessToken, expires: r.Expiry}, r.AccessToken != "", nil
		},
		Fingerprint: "api-key-test",
	}
}

// A Cache keeps a credential of any type by the Client's rules: one fetch
// for many callers, kept in the store and adopted from it, attached by a
// transport that replays once with a fresh one when a server rejects it.
func TestCacheOfAnotherKind(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	st := store.NewMemory()
	c, err := NewCache(apiKeyKind(srv), Config{Store: st, Key: "api"})
	require.NoError(t, err)
	defer func() { require.NoError(t, c.Close()) }()

	var wg sync.WaitGroup
	keys := make([]apiKey, 20)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys[i], _ = c.Get(t.Context())
		}()
	}
	wg.Wait()
	for _, k := range keys {
		assert.Equal(t, keys[0], k)
	}
	assert.NotEmpty(t, keys[0].key)
	assert.EqualValues(t, 1, srv.TokenRequests.Load(), "one fetch for 20 callers")

	// Another process with the same store adopts the stored key.
	c2, err := NewCache(apiKeyKind(srv), Config{Store: st, Key: "api"})
	require.NoError(t, err)
	defer c2.Close()
	k2, err := c2.Get(t.Context())
	require.NoError(t, err)
	assert.Equal(t, keys[0].key, k2.key)
	assert.EqualValues(t, 1, srv.TokenRequests.Load(), "adopted from the store")

	// A revoked key is replaced once and the request replayed.
	srv.Revoke(keys[0].key)
	hc := &http.Client{Transport: c.Transport(nil, func(r *http.Request, k apiKey) error {
		r.Header.Set("Authorization", "Bearer "+k.key)
		return nil
	})}
	resp, err := hc.Get(srv.URL + "/api")
	require.NoError(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.EqualValues(t, 1, c.Stats().Replays)
	assert.EqualValues(t, 2, srv.TokenRequests.Load())

	assert.Equal(t, "tokenmgr.Cache(api)", fmt.Sprint(c), "printed, it shows its key and no credential")

	// Invalidate drops the key in service only.
	k3, err := c.Get(t.Context())
	require.NoError(t, err)
	c.Invalidate(keys[0])
	k4, _ := c.Get(t.Context())
	assert.Equal(t, k3, k4, "an old key does not drop the new one")
	c.Invalidate(k3)
	k5, _ := c.Get(t.Context())
	assert.NotEqual(t, k3, k5)
}

// NewCache refuses what is a Client's alone, and a Kind without its
// required funcs; a panic in Fetch is an error that shows no secret of
// the Kind's.
func TestCacheRefusalsAndPanics(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	_, err := NewCache(Kind[apiKey]{}, Config{})
	assert.ErrorContains(t, err, "Fetch, ID and Expiry")
	_, err = NewCache(apiKeyKind(srv), Config{Source: ClientCredentials(ccConfig(srv))})
	assert.ErrorContains(t, err, "a Client's")

	k := apiKeyKind(srv)
	fetched := false
	k.Fetch = func(ctx context.Context) (apiKey, error) {
		if !fetched {
			fetched = true
			return apiKey{key: "key-1", expires: time.Now().Add(time.Hour)}, nil
		}
		panic("cannot fetch after key-1, secret s3cr3t-part")
	}
	k.Secrets = func(apiKey) []string { return []string{"s3cr3t-part"} }
	c, err := NewCache(k, Config{})
	require.NoError(t, err)
	defer c.Close()
	v, err := c.Get(t.Context())
	require.NoError(t, err)
	c.Invalidate(v)
	_, err = c.Get(t.Context())
	var pe *PanicError
	require.True(t, errors.As(err, &pe), "%v", err)
	assert.Equal(t, "Source", pe.Where)
	assert.NotContains(t, pe.Value, "key-1")
	assert.NotContains(t, pe.Value, "s3cr3t-part")
}

// A Kind whose Fetch returns a credential with an empty ID gets an
// ErrBadTokenResponse, not a credential that could be neither replaced
// nor invalidated; Invalidate survives a panicking ID; a Transport
// without an attach function fails each request rather than send it
// without the credential (or strip the caller's own Authorization).
func TestCacheEmptyIDAndNoAttach(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	k := apiKeyKind(srv)
	fetch := k.Fetch
	k.Fetch = func(ctx context.Context) (apiKey, error) {
		v, err := fetch(ctx)
		v.key = ""
		return v, err
	}
	c, err := NewCache(k, Config{})
	require.NoError(t, err)
	defer c.Close()
	_, err = c.Get(t.Context())
	require.ErrorIs(t, err, ErrBadTokenResponse)
	assert.ErrorContains(t, err, "ID is empty")

	k = apiKeyKind(srv)
	k.ID = func(v apiKey) string {
		if v.key == "boom" {
			panic("ID panicked")
		}
		return v.key
	}
	c2, err := NewCache(k, Config{})
	require.NoError(t, err)
	defer c2.Close()
	v, err := c2.Get(t.Context())
	require.NoError(t, err)
	assert.NotPanics(t, func() { c2.Invalidate(apiKey{key: "boom"}) })
	v2, err := c2.Get(t.Context())
	require.NoError(t, err)
	assert.Equal(t, v, v2, "not invalidated")

	hc := &http.Client{Transport: c2.Transport(nil, nil)}
	req, err := http.NewRequest("GET", srv.URL+"/api", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer the-callers-own")
	_, err = hc.Do(req)
	assert.ErrorContains(t, err, "no attach function")
	assert.Zero(t, srv.Rejected.Load(), "nothing was sent")
}

// A stored credential without an ID is not adopted (it is fetched anew,
// as one fetched without an ID is refused), and Invalidate of a zero
// value drops nothing.
func TestCacheStoredEmptyIDNotAdopted(t *testing.T) {
	srv := tokenmgrtest.NewServer(tokenmgrtest.Options{})
	defer srv.Close()
	st := store.NewMemory()
	b, err := (&record.Record{V: record.Version, AccessToken: "stored", Expiry: time.Now().Add(time.Hour), Obtained: time.Now()}).Encode()
	require.NoError(t, err)
	require.NoError(t, st.Save(t.Context(), "api", b))
	k := apiKeyKind(srv)
	k.FromRecord = func(r *record.Record) (apiKey, bool, error) { return apiKey{expires: r.Expiry}, true, nil } // no key
	c, err := NewCache(k, Config{Store: st, Key: "api"})
	require.NoError(t, err)
	defer c.Close()
	v, err := c.Get(t.Context())
	require.NoError(t, err)
	assert.NotEmpty(t, v.key, "fetched, not the stored credential without an ID")
	assert.EqualValues(t, 1, srv.TokenRequests.Load())

	c.Invalidate(apiKey{})
	v2, err := c.Get(t.Context())
	require.NoError(t, err)
	assert.Equal(t, v, v2, "a zero value invalidates nothing")
}
