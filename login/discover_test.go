package login

import "testing"

// The RFC 9207 flag is read leniently: true (or "true") promises iss,
// anything else does not, and no value of it fails discovery, which
// would stop the refresh of a running sign-in that never uses it.
func TestDiscoveryIssFlag(t *testing.T) {
	const base = `{"issuer":"https://id.example.com","token_endpoint":"https://id.example.com/token"`
	for v, want := range map[string]bool{
		`true`: true, `"true"`: true, `false`: false, `1`: false, `"yes"`: false, `null`: false, `{}`: false, ``: false,
	} {
		doc := base + `}`
		if v != "" {
			doc = base + `,"authorization_response_iss_parameter_supported":` + v + `}`
		}
		d, err := parseDiscovery("https://id.example.com", []byte(doc))
		if err != nil {
			t.Errorf("flag %s: %v", v, err)
			continue
		}
		if got := bool(d.SendsIss); got != want {
			t.Errorf("flag %s: sends iss %v, want %v", v, got, want)
		}
	}
}
