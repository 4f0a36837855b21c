module github.com/tokenmgr/tokenmgr/cmd/tokenmgr

go 1.26.0

require (
	github.com/aws/aws-sdk-go-v2 v1.48.0
	github.com/aws/aws-sdk-go-v2/service/sts v1.52.0
	github.com/go-jose/go-jose/v4 v4.1.9
	github.com/tokenmgr/tokenmgr v0.0.0-00010101000000-000000000000
	github.com/tokenmgr/tokenmgr/awscreds v0.0.0-00010101000000-000000000000
	github.com/tokenmgr/tokenmgr/login v0.0.0-00010101000000-000000000000
	github.com/tokenmgr/tokenmgr/store/redisstore v0.0.0-00010101000000-000000000000
	go.opentelemetry.io/otel v1.47.0
	go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp v1.47.0
	go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp v1.47.0
	go.opentelemetry.io/otel/metric v1.47.0
	go.opentelemetry.io/otel/sdk v1.47.0
	go.opentelemetry.io/otel/sdk/metric v1.47.0
	go.opentelemetry.io/otel/trace v1.47.0
	go.opentelemetry.io/proto/otlp v1.11.1
	golang.org/x/oauth2 v0.38.0
	google.golang.org/protobuf v1.36.12
)

require (
	github.com/cenkalti/backoff/v5 v5.0.3 // indirect
	github.com/coreos/go-oidc/v3 v3.21.0 // indirect
	github.com/go-logr/logr v1.4.4 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	github.com/google/uuid v1.6.0 // indirect
	github.com/grpc-ecosystem/grpc-gateway/v2 v2.31.0 // indirect
	go.opentelemetry.io/auto/sdk v1.2.1 // indirect
	go.opentelemetry.io/otel/exporters/otlp/otlptrace v1.47.0 // indirect
	go.opentelemetry.io/otel/log v1.47.0 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/text v0.44.0 // indirect
	google.golang.org/genproto/googleapis/api v0.0.0-20260928230214-8a89bd6388cc // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260928230214-8a89bd6388cc // indirect
	google.golang.org/grpc v1.84.0 // indirect
)

require (
	github.com/aws/aws-sdk-go-v2/internal/configsources v1.5.12 // indirect
	github.com/aws/aws-sdk-go-v2/internal/endpoints/v2 v2.8.12 // indirect
	github.com/aws/aws-sdk-go-v2/internal/v4a v1.5.12 // indirect
	github.com/aws/aws-sdk-go-v2/service/internal/accept-encoding v1.13.25 // indirect
	github.com/aws/aws-sdk-go-v2/service/internal/presigned-url v1.14.12 // indirect
	github.com/aws/smithy-go v1.28.9 // indirect
	github.com/cenkalti/backoff/v4 v4.3.0 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/danieljoos/wincred v1.2.3 // indirect
	github.com/godbus/dbus/v5 v5.2.2 // indirect
	github.com/gofrs/flock v0.13.2 // indirect
	github.com/redis/go-redis/v9 v9.23.0
	github.com/tokenmgr/tokenmgr/diagnose v0.0.0-00010101000000-000000000000
	github.com/zalando/go-keyring v0.2.8 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/crypto v0.59.0 // indirect
	golang.org/x/sync v0.25.0 // indirect
	golang.org/x/sys v0.50.0 // indirect
)

// Developed against the root module in this repository. A release tags the
// root first and then replaces this line with that version, as gopls does
// with golang.org/x/tools, so that `go install ...@version` works.
replace github.com/tokenmgr/tokenmgr => ../..

replace github.com/tokenmgr/tokenmgr/awscreds => ../../awscreds

replace github.com/tokenmgr/tokenmgr/store/redisstore => ../../store/redisstore

replace github.com/tokenmgr/tokenmgr/diagnose => ../../diagnose

replace github.com/tokenmgr/tokenmgr/login => ../../login

// Test dependencies.
require (
	github.com/aws/aws-sdk-go-v2/credentials v1.21.1
	github.com/stretchr/testify v1.12.1
	github.com/tokenmgr/tokenmgr/oteltokenmgr v0.0.0-00010101000000-000000000000
)

replace github.com/tokenmgr/tokenmgr/oteltokenmgr => ../../oteltokenmgr
