package envconfig

import (
	"encoding/base64"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestEnvRedactor(t *testing.T) {
	e := &Env{ClientID: "id", ClientSecret: "client-secret", RefreshToken: "refresh-tok", AccessToken: "access-tok", StorePassphrase: []byte("pass phrase")}
	r := e.Redactor()
	basic := base64.StdEncoding.EncodeToString([]byte("id:client-secret"))
	out := r.Redact("client-secret refresh-tok access-tok pass+phrase " + basic)
	for _, s := range []string{"client-secret", "refresh-tok", "access-tok", "pass+phrase", basic} {
		assert.NotContains(t, out, s)
	}
}
