// Package seal holds the key handling tokenmgr's encrypted stores share
// (the encrypted file in package store and the Redis store): a key K that
// is scrypt of a passphrase under bounded parameters or a raw 32-byte key,
// two subkeys derived from K with HKDF-SHA256 (one for the payload, one a
// key check that tells a wrong key from modified data), and
// XChaCha20-Poly1305. Each store names its own HKDF labels, so a key
// derived for one format never opens another.
//
// A [Deriver] derives at most once per salt and cost in a process and, for
// a passphrase, keeps the keys in a session [Cache] (the kernel keyring on
// Linux) bound to the labels, salt and cost, never with anything that
// tests the passphrase faster than scrypt, so that a short-lived process
// (`tokenmgr token` in a shell loop) skips scrypt.
package seal

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"
)

// Key derivations.
const (
	KDFScrypt = 1 // K = scrypt(passphrase, salt, 2^LogN, R, P, 32)
	KDFRawKey = 2 // K = the 32-byte key
)

// Sizes, in bytes.
const (
	SaltSize   = 16
	CheckSize  = 16
	KeySize    = 32                          // a raw key and every derived key
	NonceSize  = chacha20poly1305.NonceSizeX // 24
	Overhead   = chacha20poly1305.Overhead   // 16, the tag
	scryptSize = KeySize
)

// Default scrypt cost: N = 2^15, r = 8, p = 1 (32 MiB), what scrypt's
// authors and x/crypto recommend for interactive logins.
const (
	DefaultLogN = 15
	DefaultR    = 8
	DefaultP    = 1
)

// Limits bound the scrypt cost stored data may ask for, so crafted data
// cannot make a reader burn minutes of CPU or gigabytes of memory.
type Limits struct {
	MinLogN, MaxLogN int
	MaxR, MaxP       int
	MaxMem           uint64 // 128 * r * N bytes
	MaxWork          uint64 // N * r * p
}

// DefaultLimits accept N up to 2^20, at most 256 MiB of memory and 16 times
// the default work.
var DefaultLimits = Limits{
	MinLogN: 10, MaxLogN: 20,
	MaxR: 32, MaxP: 16,
	MaxMem:  256 << 20,
	MaxWork: 1 << 22,
}

// Check reports scrypt parameters outside l. Its message names the
// parameters, never a secret.
func (l Limits) Check(logN, r, p int) error {
	if logN < l.MinLogN || logN > l.MaxLogN {
		return fmt.Errorf("scrypt log2(N)=%d outside the accepted range %d..%d", logN, l.MinLogN, l.MaxLogN)
	}
	if r < 1 || r > l.MaxR || p < 1 || p > l.MaxP {
		return fmt.Errorf("scrypt r=%d p=%d outside the accepted range r 1..%d, p 1..%d", r, p, l.MaxR, l.MaxP)
	}
	n := uint64(1) << logN
	if mem := 128 * uint64(r) * n; mem > l.MaxMem {
		return fmt.Errorf("scrypt parameters need %d MiB of memory, more than the %d MiB limit", mem>>20, l.MaxMem>>20)
	}
	if work := n * uint64(r) * uint64(p); work > l.MaxWork {
		return fmt.Errorf("scrypt cost N*r*p=%d exceeds the limit %d", work, l.MaxWork)
	}
	return nil
}

// Params identify a key: equal Params and secret give equal Keys. The
// scrypt fields are zero with KDFRawKey. Params are comparable, for use as
// a cache key.
type Params struct {
	KDF, LogN, R, P byte
	Salt            [SaltSize]byte
}

// Labels are the HKDF info strings of one format.
type Labels struct {
	Payload, Check string
}

// Keys are the subkeys derived from one K and salt.
type Keys struct {
	Payload [KeySize]byte
	Check   [CheckSize]byte
}

// Derive computes K from secret (the passphrase for KDFScrypt, the raw key
// for KDFRawKey) and its subkeys. The caller checks p against its Limits
// first: Derive runs scrypt with whatever it is given.
func Derive(p Params, secret []byte, l Labels) (*Keys, error) {
	var k []byte
	switch p.KDF {
	case KDFScrypt:
		var err error
		k, err = scrypt.Key(secret, p.Salt[:], 1<<p.LogN, int(p.R), int(p.P), scryptSize)
		if err != nil {
			return nil, fmt.Errorf("scrypt: %v", err)
		}
		defer clear(k)
	case KDFRawKey:
		if len(secret) != KeySize {
			return nil, fmt.Errorf("raw key must be %d bytes", KeySize)
		}
		k = secret
	default:
		return nil, fmt.Errorf("unknown KDF %d", p.KDF)
	}
	var ks Keys
	pk, err := hkdf.Key(sha256.New, k, p.Salt[:], l.Payload, len(ks.Payload))
	if err != nil {
		return nil, err
	}
	ck, err := hkdf.Key(sha256.New, k, p.Salt[:], l.Check, len(ks.Check))
	if err != nil {
		return nil, err
	}
	copy(ks.Payload[:], pk)
	copy(ks.Check[:], ck)
	clear(pk)
	clear(ck)
	return &ks, nil
}

// CheckMatches reports, in constant time, whether check is k's key check.
func (k *Keys) CheckMatches(check []byte) bool {
	return subtle.ConstantTimeCompare(k.Check[:], check) == 1
}

// Seal appends the ciphertext and tag of plain to dst.
func (k *Keys) Seal(dst, nonce, plain, ad []byte) []byte {
	aead, err := chacha20poly1305.NewX(k.Payload[:])
	if err != nil {
		panic(err) // the key has the right size by construction
	}
	return aead.Seal(dst, nonce, plain, ad)
}

// Open authenticates and decrypts ct. It fails only when ct, nonce or ad
// were modified (or the key is wrong, which the key check rules out).
func (k *Keys) Open(dst, nonce, ct, ad []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(k.Payload[:])
	if err != nil {
		return nil, err
	}
	return aead.Open(dst, nonce, ct, ad)
}
