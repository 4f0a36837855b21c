package awscreds

import "github.com/tokenmgr/tokenmgr/envconfig"

// EnvDocs documents each of [EnvVars], in the same order, for "tokenmgr
// --help" (a user of go install has no package docs at hand).
var EnvDocs = []envconfig.Doc{
	{Name: "AWS_ROLE_ARN", Doc: "aws: the role to assume with STS AssumeRoleWithWebIdentity"},
	{Name: "AWS_WEB_IDENTITY_TOKEN_FILE", Doc: "aws: file holding the web identity token, re-read at every refresh (unset: the TOKENMGR_* OAuth token)"},
	{Name: "AWS_ROLE_SESSION_NAME", Doc: `aws: session name (default "tokenmgr")`},
	{Name: "AWS_REGION", Doc: "aws: STS region"},
	{Name: "AWS_DEFAULT_REGION", Doc: "aws: STS region when AWS_REGION is unset"},
	{Name: "AWS_ENDPOINT_URL_STS", Doc: "aws: STS endpoint (default: the regional one)"},
	{Name: "AWS_ENDPOINT_URL", Doc: "aws: STS endpoint when AWS_ENDPOINT_URL_STS is unset"},
	{Name: "TOKENMGR_AWS_DURATION", Doc: "aws: session duration asked of STS, 15m to 12h (default 1h)"},
	{Name: "TOKENMGR_AWS_KEY", Doc: `aws: the credentials' name in the store (default "aws:" + AWS_ROLE_ARN)`},
}
