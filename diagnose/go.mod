module github.com/tokenmgr/tokenmgr/diagnose

go 1.26.0

// Developed against the root module in this repository (see cmd/tokenmgr's
// go.mod for how a release pins it).
replace github.com/tokenmgr/tokenmgr => ../

require (
	github.com/go-jose/go-jose/v4 v4.1.9
	github.com/tokenmgr/tokenmgr v0.0.0-00010101000000-000000000000
	golang.org/x/oauth2 v0.38.0
)

require (
	github.com/aws/aws-sdk-go-v2/internal/configsources v1.5.12 // indirect
	github.com/aws/aws-sdk-go-v2/internal/endpoints/v2 v2.8.12 // indirect
	github.com/aws/aws-sdk-go-v2/internal/v4a v1.5.12 // indirect
	github.com/aws/aws-sdk-go-v2/service/internal/accept-encoding v1.13.25 // indirect
	github.com/aws/aws-sdk-go-v2/service/internal/presigned-url v1.14.12 // indirect
	github.com/cenkalti/backoff/v4 v4.3.0 // indirect
	github.com/danieljoos/wincred v1.2.3 // indirect
	github.com/godbus/dbus/v5 v5.2.2 // indirect
	github.com/gofrs/flock v0.13.2 // indirect
	github.com/zalando/go-keyring v0.2.8 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

// Test dependencies.
require (
	github.com/stretchr/testify v1.12.1
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)

// awsdiag (tokenmgr doctor's AWS checks) builds on awscreds; awscreds
// imports nothing of this module.
replace github.com/tokenmgr/tokenmgr/awscreds => ../awscreds

require (
	github.com/aws/aws-sdk-go-v2 v1.48.0
	github.com/aws/aws-sdk-go-v2/service/sts v1.52.0
	github.com/aws/smithy-go v1.28.9
	github.com/tokenmgr/tokenmgr/awscreds v0.0.0-00010101000000-000000000000
)
