package redisstore

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/tokenmgr/tokenmgr/store"
	"github.com/tokenmgr/tokenmgr/store/seal"
)

// The stored format, version 2; FORMAT.md has the rationale.
//
//	header (48 bytes), the record under <prefix>header and the start of every value:
//	offset size field
//	0      8    magic "TOKENMGR"
//	8      1    format version: 1 in the header record, 2 in a value
//	9      1    KDF: 1 = scrypt of a passphrase, 2 = raw 32-byte key
//	10     1    scrypt log2(N) (0 with KDF 2)
//	11     1    scrypt r       (0 with KDF 2)
//	12     1    scrypt p       (0 with KDF 2)
//	13     1    kind: 'R', a Redis store
//	14     2    reserved, zero
//	16     16   salt, random, chosen once for the fleet
//	32     16   key check: HKDF-SHA256(K, salt, "tokenmgr redis v1 key check")
//
//	value: header (48) | fence (16) | nonce (24) | XChaCha20-Poly1305
//	ciphertext and tag of the record under HKDF-SHA256(K, salt, "tokenmgr
//	redis v1 payload"), with additional data header | fence | credential
//	name. The fence is 16 ASCII digits, a number ordering the saves of one
//	credential (see Store.Save). A version 1 value (written by an older
//	tokenmgr) has the same layout but its additional data leaves the fence
//	out: it is read, and its fence is not trusted.
const (
	magic      = "TOKENMGR"
	version    = 2 // of a value; a version 1 value is still read
	recVersion = 1 // of the header record, whose layout version 2 did not change: old replicas still start
	kindRedis  = 'R'
	headerSize = 48
	offVersion = 8
	offKDF     = 9
	offKind    = 13
	offSalt    = 16
	offCheck   = 32
	fenceSize  = 16
	offNonce   = headerSize + fenceSize
	minValue   = offNonce + seal.NonceSize + seal.Overhead
	// maxValue bounds what Load accepts: a record and the format's overhead.
	maxValue = store.MaxValueSize + minValue
	// maxFence bounds a fence, far above any clock reading in microseconds
	// (year 2255) and below 2^53, so that Lua's numbers hold it exactly.
	maxFence = 9_000_000_000_000_000
)

var labels = seal.Labels{Payload: "tokenmgr redis v1 payload", Check: "tokenmgr redis v1 key check"}

// header is a parsed, bounded header.
type header struct {
	params  seal.Params
	check   [seal.CheckSize]byte
	raw     [headerSize]byte
	version byte
}

// newHeader builds the header for params and keys.
func newHeader(p seal.Params, k *seal.Keys) *header {
	h := &header{params: p, check: k.Check}
	copy(h.raw[:], magic)
	h.raw[offVersion] = recVersion
	h.version = recVersion
	h.raw[offKDF], h.raw[offKDF+1], h.raw[offKDF+2], h.raw[offKDF+3] = p.KDF, p.LogN, p.R, p.P
	h.raw[offKind] = kindRedis
	copy(h.raw[offSalt:], p.Salt[:])
	copy(h.raw[offCheck:], k.Check[:])
	return h
}

// parseHeader checks everything about a header that can be checked without
// the key, the scrypt cost bounds included. Its errors wrap store.ErrFormat
// and never quote the bytes.
func parseHeader(b []byte, lim seal.Limits) (*header, error) {
	if len(b) < headerSize {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte header", store.ErrFormat, len(b), headerSize)
	}
	if !bytes.Equal(b[:len(magic)], []byte(magic)) || b[offKind] != kindRedis {
		return nil, fmt.Errorf("%w: not a tokenmgr Redis store value (bad magic)", store.ErrFormat)
	}
	switch v := b[offVersion]; {
	case v > version:
		return nil, fmt.Errorf("%w: written in format version %d by a newer tokenmgr; this one reads version %d, upgrade it", store.ErrFormat, v, version)
	case v == 0:
		return nil, fmt.Errorf("%w: unknown format version %d", store.ErrFormat, v)
	}
	if b[14]|b[15] != 0 {
		return nil, fmt.Errorf("%w: reserved header bytes are not zero", store.ErrFormat)
	}
	h := &header{params: seal.Params{KDF: b[offKDF], LogN: b[offKDF+1], R: b[offKDF+2], P: b[offKDF+3]}, version: b[offVersion]}
	switch h.params.KDF {
	case seal.KDFScrypt:
		if err := lim.Check(int(h.params.LogN), int(h.params.R), int(h.params.P)); err != nil {
			return nil, fmt.Errorf("%w: %v", store.ErrFormat, err)
		}
	case seal.KDFRawKey:
		if h.params.LogN|h.params.R|h.params.P != 0 {
			return nil, fmt.Errorf("%w: scrypt parameters set for a raw key", store.ErrFormat)
		}
	default:
		return nil, fmt.Errorf("%w: unknown key derivation %d", store.ErrFormat, h.params.KDF)
	}
	copy(h.params.Salt[:], b[offSalt:])
	copy(h.check[:], b[offCheck:])
	copy(h.raw[:], b[:headerSize])
	return h, nil
}

// additionalData binds a value to everything before its nonce (its
// header, and from version 2 on its fence) and to its credential name, so
// a value moved to another credential's key, or given another fence, fails
// authentication.
func additionalData(prefix []byte, name string) []byte {
	ad := make([]byte, 0, len(prefix)+len(name))
	ad = append(ad, prefix...)
	return append(ad, name...)
}

// sealValue encrypts plain for credential name under h and k, with a nonce
// read from rnd, as a version 2 value whose fence (formatFence; zeros if
// not 16 bytes) is authenticated.
func sealValue(h *header, k *seal.Keys, name string, fence string, plain []byte, rnd io.Reader) ([]byte, error) {
	if len(fence) != fenceSize {
		fence = strings.Repeat("0", fenceSize)
	}
	out := make([]byte, offNonce+seal.NonceSize, minValue+len(plain))
	copy(out, h.raw[:])
	out[offVersion] = version
	copy(out[headerSize:], fence)
	nonce := out[offNonce:]
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		return nil, fmt.Errorf("reading random nonce: %w", err)
	}
	return k.Seal(out, nonce, plain, additionalData(out[:offNonce], name)), nil
}

// formatFence is a fence as stored: 16 decimal digits.
func formatFence(f int64) string { return fmt.Sprintf("%0*d", fenceSize, f) }

// parseFence reads a stored fence, 16 decimal digits at most maxFence.
func parseFence(b []byte) (int64, bool) {
	if len(b) != fenceSize {
		return 0, false
	}
	var f int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		f = f*10 + int64(c-'0')
	}
	return f, f <= maxFence
}

// openValue authenticates and decrypts a value of credential name. keys
// returns the keys for a header's parameters and key check. Errors wrap
// store.ErrFormat, store.ErrWrongKey or store.ErrTampered and never quote
// the value.
func openValue(b []byte, name string, lim seal.Limits, keys func(seal.Params, []byte) (*seal.Keys, error)) ([]byte, error) {
	if len(b) > maxValue {
		return nil, fmt.Errorf("%w: value of %d bytes, more than %d", store.ErrFormat, len(b), maxValue)
	}
	h, err := parseHeader(b, lim)
	if err != nil {
		return nil, err
	}
	if len(b) < minValue {
		return nil, fmt.Errorf("%w: value is truncated (%d bytes, at least %d needed)", store.ErrFormat, len(b), minValue)
	}
	authenticated := b[:headerSize] // version 1: the fence is not authenticated, and not trusted
	if h.version >= 2 {
		authenticated = b[:offNonce]
	}
	k, err := keys(h.params, h.check[:])
	if err != nil {
		return nil, err
	}
	if !k.CheckMatches(h.check[:]) {
		return nil, store.ErrWrongKey
	}
	plain, err := k.Open(nil, b[offNonce:offNonce+seal.NonceSize], b[offNonce+seal.NonceSize:], additionalData(authenticated, name))
	if err != nil {
		return nil, store.ErrTampered
	}
	if _, ok := parseFence(b[headerSize:offNonce]); h.version >= 2 && !ok {
		// Authenticated, so written with the key, yet not a fence the
		// save script can compare.
		clear(plain)
		return nil, fmt.Errorf("%w: the fence is not %d decimal digits up to %d", store.ErrFormat, fenceSize, int64(maxFence))
	}
	return plain, nil
}

// namesLabel is the HKDF info deriving the key of credential-name tags.
const namesLabel = "tokenmgr redis v2 key names"

// namesKey derives the key that tags credential names from the payload
// key (itself derived from K and the fleet's salt), under its own label:
// a key for names only.
func namesKey(k *seal.Keys) ([]byte, error) {
	return hkdf.Key(sha256.New, k.Payload[:], nil, namesLabel, sha256.Size)
}

// nameTag is what Redis sees of a credential name: the first 16 bytes of
// HMAC-SHA256 under namesKey, in hex. Without the key nobody can tell
// which name a tag stands for, nor test a guess.
func nameTag(key []byte, name string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(name))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// legacyTag is the tag of format version 1's key names: the first 16
// bytes of the name's SHA-256, which anyone can compute from a guess. Such
// keys are read once and rewritten under nameTag (Store.Load).
func legacyTag(name string) string {
	sum := sha256.Sum256([]byte(name))
	return hex.EncodeToString(sum[:16])
}

// randomSalt returns a fresh salt.
func randomSalt() (s [seal.SaltSize]byte, err error) {
	_, err = rand.Read(s[:])
	return s, err
}
