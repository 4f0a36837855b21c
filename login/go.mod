module github.com/tokenmgr/tokenmgr/login

go 1.26.0

// Developed against the root module in this repository (see cmd/tokenmgr's
// go.mod for how a release pins it).
replace github.com/tokenmgr/tokenmgr => ../

require (
	github.com/coreos/go-oidc/v3 v3.21.0
	github.com/tokenmgr/tokenmgr v0.0.0-00010101000000-000000000000
	golang.org/x/oauth2 v0.38.0
)

require (
	github.com/cenkalti/backoff/v4 v4.3.0 // indirect
	github.com/danieljoos/wincred v1.2.3 // indirect
	github.com/go-jose/go-jose/v4 v4.1.9 // indirect
	github.com/godbus/dbus/v5 v5.2.2 // indirect
	github.com/gofrs/flock v0.13.2 // indirect
	github.com/zalando/go-keyring v0.2.8 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)
