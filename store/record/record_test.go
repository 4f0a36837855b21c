package record

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"
)

func TestRoundTrip(t *testing.T) {
	exp := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	tok := (&oauth2.Token{AccessToken: "at", TokenType: "Bearer", RefreshToken: "rt", Expiry: exp}).
		WithExtra(map[string]any{"scope": "a b", "id_token": "idt", "other": 1})
	b, err := FromToken(tok, exp.Add(-time.Hour)).Encode()
	require.NoError(t, err)
	r, err := Decode(b)
	require.NoError(t, err)
	assert.Equal(t, Version, r.V)
	got := r.Token()
	assert.Equal(t, "at", got.AccessToken)
	assert.Equal(t, "rt", got.RefreshToken)
	assert.True(t, exp.Equal(got.Expiry))
	assert.Equal(t, "a b", got.Extra("scope"))
	assert.Equal(t, "idt", got.Extra("id_token"))
	assert.True(t, exp.Add(-time.Hour).Equal(r.Obtained))
}

func TestRoundTripAWS(t *testing.T) {
	exp := time.Date(2026, 11, 28, 18, 0, 0, 0, time.UTC)
	tok := (&oauth2.Token{AccessToken: "session-token", TokenType: "AWS4-HMAC-SHA256", Expiry: exp}).
		WithExtra(map[string]any{ExtraAWSAccessKeyID: "ASIAEXAMPLE", ExtraAWSSecretAccessKey: "secret-key"})
	b, err := FromToken(tok, exp.Add(-time.Hour)).Encode()
	require.NoError(t, err)
	assert.Contains(t, string(b), `"aws_access_key_id":"ASIAEXAMPLE"`)
	r, err := Decode(b)
	require.NoError(t, err)
	got := r.Token()
	assert.Equal(t, "session-token", got.AccessToken)
	assert.Equal(t, "AWS4-HMAC-SHA256", got.TokenType)
	assert.Equal(t, "ASIAEXAMPLE", got.Extra(ExtraAWSAccessKeyID))
	assert.Equal(t, "secret-key", got.Extra(ExtraAWSSecretAccessKey))
	assert.True(t, exp.Equal(got.Expiry))
}

func TestDecodeErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"empty", "", "empty"},
		{"not json", "secret-token-value", "invalid JSON"},
		{"no version", `{"access_token":"secret-token-value"}`, "no format version"},
		{"newer", `{"v":2,"access_token":"secret-token-value"}`, "newer"},
		{"negative version", `{"v":-1,"access_token":"secret-token-value"}`, "format version -1"},
		{"nothing held", `{"v":1}`, "neither"},
		{"wrong type", `{"v":1,"access_token":7}`, "wrong type"},
		{"bad expiry", `{"v":1,"access_token":"secret-token-value","expiry":"secret-token-value"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.in))
			require.ErrorIs(t, err, ErrFormat)
			assert.Contains(t, err.Error(), tc.want)
			assert.NotContains(t, err.Error(), "secret-token-value")
		})
	}
	_, err := Decode([]byte(`{"v":2,"access_token":"x"}`))
	assert.ErrorIs(t, err, ErrNewer)
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"v":1,"access_token":"at","token_type":"Bearer","refresh_token":"rt","expiry":"2026-01-02T15:04:05Z","scope":"a"}`))
	f.Add([]byte(`{"v":1,"access_token":"st","aws_access_key_id":"ASIA","aws_secret_access_key":"sk","expiry":"2026-01-02T15:04:05Z"}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`{"v":1,"expiry":"x"}`))
	f.Add([]byte(``))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Decode(b)
		if err != nil {
			require.Nil(t, r, "record and error")
			// Errors quote no stored value: at most an offset, a field
			// name or a version number.
			if s := string(b); len(s) >= 12 {
				require.NotContains(t, err.Error(), s, "the error quotes its input")
			}
			return
		}
		require.Equal(t, Version, r.V, "accepted an invalid record: %+v", r)
		require.False(t, r.AccessToken == "" && r.RefreshToken == "", "accepted an invalid record: %+v", r)
		b2, err := r.Encode()
		require.NoError(t, err)
		r2, err := Decode(b2)
		require.NoError(t, err, "re-encoding")
		require.Equal(t, r.AccessToken, r2.AccessToken)
		require.Equal(t, r.RefreshToken, r2.RefreshToken)
		require.True(t, r2.Expiry.Equal(r.Expiry), "expiry %v, want %v", r2.Expiry, r.Expiry)
		require.Equal(t, r.AWSAccessKeyID, r2.AWSAccessKeyID)
		require.Equal(t, r.AWSSecretAccessKey, r2.AWSSecretAccessKey)
	})
}
