package store

import (
	"bytes"
	"maps"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/tokenmgr/tokenmgr/store/seal"
)

// Fixed inputs make the genuine files deterministic, so the fuzz target can
// tell a genuine file from a forgery by comparing bytes.
var (
	fuzzPass    = []byte("fuzz passphrase")
	fuzzRawKey  = bytes.Repeat([]byte{0x5a}, rawKeySize)
	fuzzEntries = map[string][]byte{"a": []byte("token a"), "b": bytes.Repeat([]byte{0}, 40), "": {}}
	fuzzLimits  = seal.Limits{MinLogN: 10, MaxLogN: 11, MaxR: 8, MaxP: 2, MaxMem: 2 << 20, MaxWork: 1 << 15}
)

// zeroReader supplies all-zero "random" nonces for the deterministic files.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// fuzzKeys derives keys for any header with the fuzz secrets, caching them:
// a mutated salt or cost costs one derivation, then is cheap.
type fuzzKeys struct {
	mu    sync.Mutex
	cache map[kdfID]*fileKeys
}

func (f *fuzzKeys) keys(id kdfID, _ []byte) (*fileKeys, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k, ok := f.cache[id]; ok {
		return k, nil
	}
	secret := fuzzPass
	if id.kdf == kdfRawKey {
		secret = fuzzRawKey
	}
	k, err := deriveKeys(id, secret)
	if err != nil {
		return nil, err
	}
	if len(f.cache) > 1000 {
		clear(f.cache)
	}
	f.cache[id] = k
	return k, nil
}

// genuineFiles returns the deterministic valid files: one scrypt, one raw key.
func genuineFiles(tb testing.TB) [][]byte {
	var out [][]byte
	for i, id := range []kdfID{
		{kdf: kdfScrypt, logN: 10, r: 8, p: 1, salt: [saltSize]byte{1, 2, 3}},
		{kdf: kdfRawKey, salt: [saltSize]byte{4, 5, 6}},
	} {
		secret := fuzzPass
		if id.kdf == kdfRawKey {
			secret = fuzzRawKey
		}
		fk, err := deriveKeys(id, secret)
		require.NoError(tb, err)
		data, err := encodeFile(id, fk, fuzzEntries, zeroReader{})
		require.NoError(tb, err, "entry set %d", i)
		out = append(out, data)
	}
	return out
}

// FuzzDecodeFile feeds arbitrary bytes to the file decoder: it must never
// panic, never exceed the KDF limits, and only accept the genuine files.
func FuzzDecodeFile(f *testing.F) {
	genuine := genuineFiles(f)
	for _, g := range genuine {
		f.Add(g)
		f.Add(g[:headerSize])
		f.Add(append(bytes.Clone(g), 0))
		v := bytes.Clone(g)
		v[offVersion] = 2
		f.Add(v)
		v = bytes.Clone(g)
		v[offKDF+1] = 40 // N = 2^40 must be refused, not attempted
		f.Add(v)
	}
	f.Add([]byte{})
	f.Add([]byte(fileMagic))
	keys := &fuzzKeys{cache: map[kdfID]*fileKeys{}}
	f.Fuzz(func(t *testing.T, data []byte) {
		_, entries, err := decodeFile(data, fuzzLimits, keys.keys)
		if err != nil {
			require.True(t, errIsDecodeFailure(err), "error outside ErrFormat/ErrDecrypt: %v", err)
			return
		}
		for _, g := range genuine {
			if bytes.Equal(g, data) {
				require.True(t, maps.EqualFunc(entries, fuzzEntries, bytes.Equal), "genuine file decoded to %v", entries)
				return
			}
		}
		require.Fail(t, "accepted a file that is not genuine", "%x", data)
	})
}
