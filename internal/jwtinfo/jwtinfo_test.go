package jwtinfo

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func seg(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func sign(t testing.TB, key *ecdsa.PrivateKey, kid, claims string) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign([]byte(claims))
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func newKey(t testing.TB) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParse(t *testing.T) {
	good := seg(`{"alg":"RS256","kid":"k1","typ":"JWT"}`) + "." +
		seg(`{"iss":"https://issuer.example","sub":"svc","aud":["a","b"],"exp":1700000000,"iat":1699996400.5,"nbf":1699996400}`) + "." + seg("sig")
	info, err := Parse(good)
	if err != nil {
		t.Fatal(err)
	}
	if info.Format != JWS || info.Header.Alg != "RS256" || info.Header.Kid != "k1" || info.Unsecured() {
		t.Fatalf("header: %+v", info)
	}
	c := info.Claims
	if c.Issuer != "https://issuer.example" || c.Subject != "svc" || strings.Join(c.Audience, ",") != "a,b" {
		t.Fatalf("claims: %+v", c)
	}
	if !c.Expiry.Equal(time.Unix(1700000000, 0)) || !c.IssuedAt.Equal(time.Unix(1699996400, 5e8)) || c.NotBefore == nil {
		t.Fatalf("times: %+v", c)
	}

	one, err := Parse(seg(`{"alg":"none"}`) + "." + seg(`{"aud":"x"}`) + ".")
	if err != nil || !one.Unsecured() || len(one.Claims.Audience) != 1 {
		t.Fatalf("alg none: %+v %v", one, err)
	}
	jwe, err := Parse(seg(`{"alg":"RSA-OAEP","enc":"A256GCM"}`) + ".a.b.c.d")
	if err != nil || jwe.Format != JWE {
		t.Fatalf("jwe: %+v %v", jwe, err)
	}

	for _, opaque := range []string{"at-0123456789abcdef", "", "abc.def.ghi", "ya29.a0AfH6SM", seg(`{"session":"s1","exp":1}`), "eyJ", "eyJzZXNzaW9u"} {
		info, err := Parse(opaque)
		if err != nil || info.Format != Opaque {
			t.Errorf("Parse(%q) = %+v, %v; want opaque", opaque, info, err)
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
		if !errors.As(err, &me) || me.Part != tc.part {
			t.Errorf("Parse(%q) error = %v; want malformed %s", tc.tok, err, tc.part)
			continue
		}
		if !IsMalformed(err) || !strings.HasPrefix(err.Error(), "malformed JWT") {
			t.Errorf("error text %q", err)
		}
	}
}

func TestVerify(t *testing.T) {
	a, b := newKey(t), newKey(t)
	tok := sign(t, a, "ka", `{"iss":"x"}`)
	setA := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &a.PublicKey, KeyID: "ka", Algorithm: "ES256", Use: "sig"}}}
	setBSameKid := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &b.PublicKey, KeyID: "ka", Use: "sig"}}}
	setBOtherKid := &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &b.PublicKey, KeyID: "kb"}}}

	if kid, err := Verify(tok, setA); err != nil || kid != "ka" {
		t.Fatalf("good: %q %v", kid, err)
	}
	if _, err := Verify(tok, setBSameKid); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("key B with kid A: %v", err)
	}
	if _, err := Verify(tok, setBOtherKid); !errors.Is(err, ErrNoKey) {
		t.Fatalf("no kid match: %v", err)
	}
	noKid := sign(t, a, "", `{}`)
	if _, err := Verify(noKid, &jose.JSONWebKeySet{Keys: append(setBOtherKid.Keys, setA.Keys...)}); err != nil {
		t.Fatalf("no kid, try all: %v", err)
	}
	// A flipped byte in the claims.
	p := strings.Split(tok, ".")
	p[1] = seg(`{"iss":"y"}`)
	if _, err := Verify(strings.Join(p, "."), setA); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("tampered: %v", err)
	}
	for _, tok := range []string{"opaque", seg(`{"alg":"none"}`) + "." + seg(`{}`) + ".", seg(`{"alg":"HS256"}`) + "." + seg(`{}`) + ".c2ln", "eyJ"} {
		if _, err := Verify(tok, setA); !errors.Is(err, ErrCannotVerify) {
			t.Errorf("Verify(%q) = %v; want ErrCannotVerify", tok, err)
		}
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
		if (info == nil) == (err == nil) {
			t.Fatalf("Parse(%q) = %v, %v", s, info, err)
		}
		if err != nil && !IsMalformed(err) {
			t.Fatalf("Parse(%q): error %v is not a MalformedError", s, err)
		}
		if info != nil && info.Format == JWS && info.Header.Alg == "" {
			t.Fatalf("Parse(%q): JWS without alg", s)
		}
		_, _ = Verify(s, nil)
	})
}
