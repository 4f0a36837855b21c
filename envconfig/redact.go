package envconfig

import "github.com/tokenmgr/tokenmgr/redact"

// Redactor returns a [redact.Redactor] that knows every secret e holds: the
// client secret (with its Basic credential), refresh token, static access
// token and store passphrase.
func (e *Env) Redactor() *redact.Redactor {
	r := &redact.Redactor{}
	r.AddClient(e.ClientID, e.ClientSecret)
	r.Add(e.RefreshToken, e.AccessToken, string(e.StorePassphrase))
	return r
}
