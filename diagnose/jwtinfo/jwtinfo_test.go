package jwtinfo

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func seg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func TestParse(t *testing.T) {
	good := seg(`{"alg":"RS256","kid":"k1","typ":"JWT"}`) + "." +
		seg(`{"iss":"https://issuer.example","sub":"svc","aud":["a","b"],"exp":1700000000,"iat":1699996400.5,"nbf":1699996400}`) + "." + seg("sig")
	info, err := Parse(good)
	require.NoError(t, err)
	assert.Equal(t, JWS, info.Format)
	assert.Equal(t, "RS256", info.Header.Alg)
	assert.Equal(t, "k1", info.Header.Kid)
	assert.False(t, info.Unsecured())
	c := info.Claims
	assert.Equal(t, "https://issuer.example", c.Issuer)
	assert.Equal(t, "svc", c.Subject)
	assert.Equal(t, []string{"a", "b"}, c.Audience)
	assert.True(t, c.Expiry.Equal(time.Unix(1700000000, 0)), "exp %v", c.Expiry)
	assert.True(t, c.IssuedAt.Equal(time.Unix(1699996400, 5e8)), "iat %v", c.IssuedAt)
	assert.NotNil(t, c.NotBefore)

	id, err := Parse(seg(`{"alg":"RS256"}`) + "." + seg(`{"sub":"u","email":"a@example.com","name":"A B"}`) + "." + seg("sig"))
	require.NoError(t, err, "an ID token")
	assert.Equal(t, "a@example.com", id.Claims.Email)
	assert.Equal(t, "A B", id.Claims.Name)
	odd, err := Parse(seg(`{"alg":"RS256"}`) + "." + seg(`{"sub":"u","email":1,"name":{}}`) + "." + seg("sig"))
	require.NoError(t, err, "email and name of another type are not shown, and no error")
	assert.Empty(t, odd.Claims.Email)

	one, err := Parse(seg(`{"alg":"none"}`) + "." + seg(`{"aud":"x"}`) + ".")
	require.NoError(t, err, "alg none")
	assert.True(t, one.Unsecured())
	assert.Equal(t, []string{"x"}, one.Claims.Audience)
	jwe, err := Parse(seg(`{"alg":"RSA-OAEP","enc":"A256GCM"}`) + ".a.b.c.d")
	require.NoError(t, err, "jwe")
	assert.Equal(t, JWE, jwe.Format)

	for _, opaque := range []string{"at-0123456789abcdef", "", "abc.def.ghi", "ya29.a0AfH6SM", seg(`{"session":"s1","exp":1}`), "eyJ", "eyJzZXNzaW9u"} {
		info, err := Parse(opaque)
		if assert.NoError(t, err, "Parse(%q)", opaque) {
			assert.Equal(t, Opaque, info.Format, "Parse(%q)", opaque)
		}
	}

	for _, tc := range []struct{ tok, part string }{
		{"eyJhbGciOiJSUzI1NiJ9", "token"},
		{"eyJ!!!." + seg(`{}`) + ".c2ln", "header"},
		{seg(`{"alg":"RS256"`) + "." + seg(`{}`) + ".c2ln", "header"},
		{seg(`{"typ":"JWT"}`) + "." + seg(`{}`) + ".c2ln", "header"},
		{seg(`{"alg":"RS256"}`) + ".%%%.c2ln", "claims"},
		{seg(`{"alg":"RS256"}`) + "." + seg(`[1,2]`) + ".c2ln", "claims"},
		{seg(`{"alg":"RS256"}`) + "." + seg(`{"exp":"tomorrow"}`) + ".c2ln", "claims"},
		{seg(`{"alg":"RS256"}`) + "." + seg(`{"aud":7}`) + ".c2ln", "claims"},
		{seg(`{"alg":"RS256"}`) + "." + seg(`{}`) + ".", "signature"},
		{seg(`{"alg":"RS256"}`) + "." + seg(`{}`) + ".***", "signature"},
	} {
		_, err := Parse(tc.tok)
		var me *MalformedError
		if !assert.ErrorAs(t, err, &me, "Parse(%q)", tc.tok) {
			continue
		}
		assert.Equal(t, tc.part, me.Part, "Parse(%q)", tc.tok)
		assert.True(t, IsMalformed(err))
		assert.True(t, strings.HasPrefix(err.Error(), "malformed JWT"), "error text %q", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"", "opaque-token", "eyJ", "a.b.c", "a.b.c.d.e",
		seg(`{"alg":"RS256","kid":"k"}`) + "." + seg(`{"exp":1e300,"aud":["x"]}`) + ".c2ln",
		seg(`{"alg":"none"}`) + "." + seg(`{"nbf":-1.5}`) + ".",
		seg(`{"alg":"ES256"}`) + "." + seg(`{"iat":null}`) + ".AAAA==",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		info, err := Parse(s)
		require.NotEqual(t, info == nil, err == nil, "Parse(%q) = %v, %v: one of them", s, info, err)
		if err != nil {
			require.True(t, IsMalformed(err), "Parse(%q): error %v is not a MalformedError", s, err)
		} else if info.Format == JWS {
			require.NotEmpty(t, info.Header.Alg, "Parse(%q): JWS without alg", s)
		}
	})
}
