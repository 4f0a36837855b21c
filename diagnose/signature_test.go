package diagnose

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func seg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func signES256(t testing.TB, key *ecdsa.PrivateKey, kid, claims string) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	require.NoError(t, err)
	jws, err := s.Sign([]byte(claims))
	require.NoError(t, err)
	out, err := jws.CompactSerialize()
	require.NoError(t, err)
	return out
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return k
}

func TestVerifySignature(t *testing.T) {
	a, b := newKey(t), newKey(t)
	tok := signES256(t, a, "ka", `{"iss":"x"}`)
	setA := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &a.PublicKey, KeyID: "ka", Algorithm: "ES256", Use: "sig"}}}
	setBSameKid := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &b.PublicKey, KeyID: "ka", Use: "sig"}}}
	setBOtherKid := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &b.PublicKey, KeyID: "kb"}}}

	kid, err := verifySignature(tok, setA)
	require.NoError(t, err, "good")
	assert.Equal(t, "ka", kid)
	_, err = verifySignature(tok, setBSameKid)
	assert.ErrorIs(t, err, errBadSignature, "key B with kid A")
	_, err = verifySignature(tok, setBOtherKid)
	assert.ErrorIs(t, err, errNoKey, "no kid match")
	noKid := signES256(t, a, "", `{}`)
	_, err = verifySignature(noKid, &jose.JSONWebKeySet{Keys: append(setBOtherKid.Keys, setA.Keys...)})
	assert.NoError(t, err, "no kid, try all")
	// A flipped byte in the claims.
	p := strings.Split(tok, ".")
	p[1] = seg(`{"iss":"y"}`)
	_, err = verifySignature(strings.Join(p, "."), setA)
	assert.ErrorIs(t, err, errBadSignature, "tampered")
	for _, tok := range []string{"opaque", seg(`{"alg":"none"}`) + "." + seg(`{}`) + ".", seg(`{"alg":"HS256"}`) + "." + seg(`{}`) + ".c2ln", "eyJ"} {
		_, err := verifySignature(tok, setA)
		assert.ErrorIs(t, err, errCannotVerify, "verifySignature(%q)", tok)
	}
}

func FuzzVerifySignature(f *testing.F) {
	for _, s := range []string{
		"", "opaque-token", "eyJ", "a.b.c", "a.b.c.d.e",
		seg(`{"alg":"RS256","kid":"k"}`) + "." + seg(`{}`) + ".c2ln",
		seg(`{"alg":"ES256"}`) + "." + seg(`{}`) + ".AAAA",
		seg(`{"alg":"none"}`) + "." + seg(`{}`) + ".",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// With no keys nothing verifies; any input is an error, never a panic.
		kid, err := verifySignature(s, nil)
		require.Error(t, err, "verifySignature(%q, no keys)", s)
		require.Empty(t, kid)
	})
}
