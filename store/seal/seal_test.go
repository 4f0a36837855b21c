package seal

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var labels = Labels{Payload: "test payload", Check: "test check"}

func TestDeriveSealOpen(t *testing.T) {
	p := Params{KDF: KDFScrypt, LogN: 10, R: 8, P: 1, Salt: [SaltSize]byte{1}}
	k1, err := Derive(p, []byte("pass"), labels)
	require.NoError(t, err)
	k2, err := Derive(p, []byte("pass"), labels)
	require.NoError(t, err)
	assert.Equal(t, k1, k2, "same params and secret give the same keys")
	wrong, err := Derive(p, []byte("other"), labels)
	require.NoError(t, err)
	assert.False(t, k1.CheckMatches(wrong.Check[:]))
	assert.True(t, k1.CheckMatches(k2.Check[:]))
	other, err := Derive(p, []byte("pass"), Labels{Payload: "x", Check: "y"})
	require.NoError(t, err)
	assert.NotEqual(t, k1.Payload, other.Payload, "labels separate formats")

	nonce := make([]byte, NonceSize)
	ct := k1.Seal(nil, nonce, []byte("secret"), []byte("ad"))
	pt, err := k2.Open(nil, nonce, ct, []byte("ad"))
	require.NoError(t, err)
	assert.Equal(t, "secret", string(pt))
	_, err = k1.Open(nil, nonce, ct, []byte("other ad"))
	assert.Error(t, err)

	_, err = Derive(Params{KDF: KDFRawKey}, []byte("short"), labels)
	assert.Error(t, err)
	_, err = Derive(Params{KDF: 9}, []byte("pass"), labels)
	assert.Error(t, err)
}

func TestLimits(t *testing.T) {
	l := DefaultLimits
	assert.NoError(t, l.Check(DefaultLogN, DefaultR, DefaultP))
	assert.Error(t, l.Check(9, 8, 1))
	assert.Error(t, l.Check(21, 8, 1))
	assert.Error(t, l.Check(15, 0, 1))
	assert.Error(t, l.Check(20, 32, 1), "memory")
	assert.Error(t, l.Check(16, 8, 16), "work")
}
