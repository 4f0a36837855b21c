package diagnose

import (
	"errors"
	"fmt"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/tokenmgr/tokenmgr/diagnose/jwtinfo"
)

// Why a signature check did not pass; verifySignature wraps them with
// detail, and checkSignature tells a tampered token (errNoKey,
// errBadSignature) from one it cannot check.
var (
	// errCannotVerify: the token is not a JWS checkable against public
	// keys (opaque, encrypted, unsecured, or an HMAC algorithm, whose key
	// is a shared secret no JWKS publishes).
	errCannotVerify = errors.New("cannot verify")
	// errNoKey: the key set has no key the token names.
	errNoKey = errors.New("no matching key")
	// errBadSignature: a key matched but the signature does not verify.
	errBadSignature = errors.New("signature does not verify")
)

// publicKeyAlgs are the algorithms verifySignature accepts: go-jose
// refuses any other, so a token cannot choose a weaker one.
var publicKeyAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// verifySignature checks token's signature against keys with go-jose. It
// tries the key whose kid the token names, or every key when the token
// names none. It returns the kid of the key that verified, or an error
// wrapping errCannotVerify, errNoKey or errBadSignature; no error holds
// any part of the token.
func verifySignature(token string, keys *jose.JSONWebKeySet) (string, error) {
	info, err := jwtinfo.Parse(token)
	if err != nil {
		return "", fmt.Errorf("%w: %v", errCannotVerify, err)
	}
	switch {
	case info.Format != jwtinfo.JWS:
		return "", fmt.Errorf("%w: %s token", errCannotVerify, info.Format)
	case info.Unsecured():
		return "", fmt.Errorf("%w: unsecured (alg none)", errCannotVerify)
	case strings.HasPrefix(strings.ToUpper(info.Header.Alg), "HS"):
		return "", fmt.Errorf("%w: %s uses a shared secret, which no key set publishes", errCannotVerify, info.Header.Alg)
	}
	jws, err := jose.ParseSignedCompact(token, publicKeyAlgs)
	if err != nil {
		return "", fmt.Errorf("%w: alg %s not supported", errCannotVerify, quoteShort(info.Header.Alg))
	}
	if len(jws.Signatures) != 1 {
		return "", fmt.Errorf("%w: %d signatures", errCannotVerify, len(jws.Signatures))
	}
	if keys == nil {
		keys = &jose.JSONWebKeySet{}
	}
	kid := jws.Signatures[0].Header.KeyID
	cands := keys.Keys
	if kid != "" {
		cands = keys.Key(kid)
		if len(cands) == 0 {
			return "", fmt.Errorf("%w: the key set has no key with kid %s", errNoKey, quoteShort(kid))
		}
	}
	var usable int
	for _, k := range cands {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != info.Header.Alg {
			continue
		}
		usable++
		if _, err := jws.Verify(k); err == nil {
			return k.KeyID, nil
		}
	}
	if usable == 0 {
		return "", fmt.Errorf("%w: the key set has no signing key for alg %s", errNoKey, quoteShort(info.Header.Alg))
	}
	return "", errBadSignature
}

// quoteShort quotes a header value from the token, cut to 20 bytes: it
// is the token's own (untrusted) text.
func quoteShort(s string) string {
	if len(s) > 20 {
		s = s[:20] + "…"
	}
	return fmt.Sprintf("%q", s)
}
