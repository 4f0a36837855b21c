module github.com/tokenmgr/tokenmgr/store/redisstore

go 1.26.0

// Developed against the root module in this repository, like cmd/tokenmgr.
replace github.com/tokenmgr/tokenmgr => ../..

require (
	github.com/redis/go-redis/v9 v9.23.0
	github.com/tokenmgr/tokenmgr v0.0.0-00010101000000-000000000000
	golang.org/x/oauth2 v0.38.0
)

require (
	github.com/cenkalti/backoff/v4 v4.3.0 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/danieljoos/wincred v1.2.3 // indirect
	github.com/godbus/dbus/v5 v5.2.2 // indirect
	github.com/gofrs/flock v0.13.2 // indirect
	github.com/zalando/go-keyring v0.2.8 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

// Test dependencies.
require github.com/stretchr/testify v1.12.1
