package store

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/tokenmgr/tokenmgr/store/seal"
)

// The encrypted file format, version 1. See FORMAT.md for the rationale.
//
//	offset size field
//	0      8    magic "TOKENMGR"
//	8      1    format version, 1
//	9      1    KDF: 1 = scrypt of a passphrase, 2 = raw 32-byte key
//	10     1    scrypt log2(N)  (0 with KDF 2)
//	11     1    scrypt r        (0 with KDF 2)
//	12     1    scrypt p        (0 with KDF 2)
//	13     3    reserved, zero
//	16     16   salt (random per file, kept across writes)
//	32     16   key check: HKDF-SHA256(K, salt, "tokenmgr store v1 key check")
//	48     24   nonce (random per write)
//	72     n+16 XChaCha20-Poly1305 ciphertext and tag of the payload under
//	            HKDF-SHA256(K, salt, "tokenmgr store v1 payload"),
//	            with bytes 0..72 as additional data
//
// K is scrypt(passphrase, salt, N, r, p, 32) or the raw key. The payload is
// the JSON object {"entries": {"<key>": "<base64 bytes>", ...}}.
const (
	fileMagic    = "TOKENMGR"
	fileVersion  = 1
	kdfScrypt    = seal.KDFScrypt
	kdfRawKey    = seal.KDFRawKey
	saltSize     = seal.SaltSize
	checkSize    = seal.CheckSize
	headerSize   = 72
	minFileSize  = headerSize + chacha20poly1305.Overhead
	maxFileSize  = 64 << 20
	infoKeyCheck = "tokenmgr store v1 key check"
	infoPayload  = "tokenmgr store v1 payload"
	offVersion   = 8
	offKDF       = 9
	offSalt      = 16
	offCheck     = 32
	offNonce     = 48
	rawKeySize   = seal.KeySize
)

// Default scrypt cost for new files: N = 2^15, r = 8, p = 1 (32 MiB), the
// cost scrypt's authors and x/crypto recommend for interactive logins. On a
// 2-core machine opening a file and loading a token takes about 100 ms,
// leaving room under a 250 ms budget on a busy machine; BenchmarkOpenLoad
// measures it.
const (
	DefaultScryptLogN = seal.DefaultLogN
	DefaultScryptR    = seal.DefaultR
	DefaultScryptP    = seal.DefaultP
)

// defaultLimits bound the scrypt cost a file may ask for (see
// [seal.Limits]), so a crafted file cannot make Load burn minutes of CPU or
// gigabytes of memory.
var defaultLimits = seal.DefaultLimits

// fileHeader is the parsed, bounded header of an encrypted file.
type fileHeader struct {
	kdf     byte
	logN    byte
	r, p    byte
	salt    [saltSize]byte
	check   [checkSize]byte
	nonce   [chacha20poly1305.NonceSizeX]byte
	rawHead []byte // bytes 0..headerSize, the AEAD additional data
}

// kdfID identifies the key a header needs: same kdfID, same derived keys.
type kdfID struct {
	kdf, logN, r, p byte
	salt            [saltSize]byte
}

func (h *fileHeader) id() kdfID {
	return kdfID{kdf: h.kdf, logN: h.logN, r: h.r, p: h.p, salt: h.salt}
}

// fileKeys are the subkeys derived from one K and salt.
type fileKeys struct {
	payload [chacha20poly1305.KeySize]byte
	check   [checkSize]byte
}

// fileLabels are the HKDF labels of the file format.
var fileLabels = seal.Labels{Payload: infoPayload, Check: infoKeyCheck}

// deriveKeys computes K (running scrypt for KDF 1) and its subkeys. secret is
// the passphrase for KDF 1 and the raw key for KDF 2.
func deriveKeys(id kdfID, secret []byte) (*fileKeys, error) {
	k, err := seal.Derive(seal.Params{KDF: id.kdf, LogN: id.logN, R: id.r, P: id.p, Salt: id.salt}, secret, fileLabels)
	if err != nil {
		return nil, err
	}
	fk := &fileKeys{payload: k.Payload, check: k.Check}
	clear(k.Payload[:])
	return fk, nil
}

// parseHeader validates everything about a file of size bytes that can be
// checked without a key, including the KDF cost bounds, from data, its
// first bytes (headerSize of them when size allows). Its errors wrap
// ErrFormat.
func parseHeader(data []byte, size int64, lim seal.Limits) (*fileHeader, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: file is empty (zero length)", ErrFormat)
	}
	if len(data) < offVersion+1 {
		if bytes.HasPrefix([]byte(fileMagic), data) {
			return nil, fmt.Errorf("%w: file is truncated (%d bytes)", ErrFormat, len(data))
		}
		return nil, fmt.Errorf("%w: not a tokenmgr encrypted store (bad magic)", ErrFormat)
	}
	if string(data[:len(fileMagic)]) != fileMagic {
		return nil, fmt.Errorf("%w: not a tokenmgr encrypted store (bad magic)", ErrFormat)
	}
	switch v := data[offVersion]; {
	case v > fileVersion:
		return nil, fmt.Errorf("%w: written in format version %d by a newer tokenmgr; this one reads version %d, upgrade it", ErrFormat, v, fileVersion)
	case v != fileVersion:
		return nil, fmt.Errorf("%w: unknown format version %d", ErrFormat, v)
	}
	if size < minFileSize || len(data) < headerSize {
		return nil, fmt.Errorf("%w: file is truncated (%d bytes, at least %d needed)", ErrFormat, size, minFileSize)
	}
	h := &fileHeader{kdf: data[offKDF], logN: data[offKDF+1], r: data[offKDF+2], p: data[offKDF+3]}
	if data[13]|data[14]|data[15] != 0 {
		return nil, fmt.Errorf("%w: reserved header bytes are not zero", ErrFormat)
	}
	switch h.kdf {
	case kdfScrypt:
		if err := lim.Check(int(h.logN), int(h.r), int(h.p)); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrFormat, err)
		}
	case kdfRawKey:
		if h.logN|h.r|h.p != 0 {
			return nil, fmt.Errorf("%w: scrypt parameters set for a raw-key file", ErrFormat)
		}
	default:
		return nil, fmt.Errorf("%w: unknown key derivation %d", ErrFormat, h.kdf)
	}
	copy(h.salt[:], data[offSalt:])
	copy(h.check[:], data[offCheck:])
	copy(h.nonce[:], data[offNonce:])
	h.rawHead = data[:headerSize]
	return h, nil
}

// payload is the JSON inside the ciphertext.
type payload struct {
	Entries map[string][]byte `json:"entries"`
}

// keySource returns the subkeys for a header's kdfID, or an error when it
// cannot (e.g. the file is a raw-key file and the store has a passphrase).
// check is the header's key check (nil for a new file): a source that
// caches keys outside the process uses it to reject a cached key that is
// not this file's.
type keySource func(id kdfID, check []byte) (*fileKeys, error)

// decodeFile checks and decrypts a whole file. Errors wrap ErrFormat,
// ErrWrongKey or ErrTampered and never include key material or contents.
func decodeFile(data []byte, lim seal.Limits, keys keySource) (*fileHeader, map[string][]byte, error) {
	h, err := parseHeader(data, int64(len(data)), lim)
	if err != nil {
		return nil, nil, err
	}
	fk, err := keys(h.id(), h.check[:])
	if err != nil {
		return nil, nil, err
	}
	if subtle.ConstantTimeCompare(fk.check[:], h.check[:]) != 1 {
		return nil, nil, ErrWrongKey
	}
	aead, err := chacha20poly1305.NewX(fk.payload[:])
	if err != nil {
		return nil, nil, err
	}
	plain, err := aead.Open(nil, h.nonce[:], data[headerSize:], h.rawHead)
	if err != nil {
		return nil, nil, ErrTampered
	}
	defer clear(plain)
	var p payload
	if err := json.Unmarshal(plain, &p); err != nil {
		// Authenticated but not JSON: only a bug can write this.
		return nil, nil, fmt.Errorf("%w: payload is not valid JSON", ErrFormat)
	}
	if p.Entries == nil {
		p.Entries = make(map[string][]byte)
	}
	return h, p.Entries, nil
}

// encodeFile writes a version 1 file for id with a nonce read from rnd.
func encodeFile(id kdfID, fk *fileKeys, entries map[string][]byte, rnd io.Reader) ([]byte, error) {
	plain, err := json.Marshal(payload{Entries: entries})
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	out := make([]byte, headerSize, headerSize+len(plain)+chacha20poly1305.Overhead)
	copy(out, fileMagic)
	out[offVersion] = fileVersion
	out[offKDF], out[offKDF+1], out[offKDF+2], out[offKDF+3] = id.kdf, id.logN, id.r, id.p
	copy(out[offSalt:], id.salt[:])
	copy(out[offCheck:], fk.check[:])
	if _, err := io.ReadFull(rnd, out[offNonce:headerSize]); err != nil {
		return nil, fmt.Errorf("reading random nonce: %w", err)
	}
	aead, err := chacha20poly1305.NewX(fk.payload[:])
	if err != nil {
		return nil, err
	}
	return aead.Seal(out, out[offNonce:headerSize], plain, out[:headerSize]), nil
}
