package envconfig

// Doc says in one line what a variable is for.
type Doc struct {
	Name string // "TOKENMGR_TOKEN_URL"
	Doc  string // "token endpoint (https, or http to loopback)"
}

// Docs documents each of [Vars], in the same order. It is the table
// the package documentation shows and "tokenmgr --help" prints, for users
// who installed the command and have no package docs at hand.
var Docs = []Doc{
	{"TOKENMGR_TOKEN_URL", "token endpoint (https, or http to loopback)"},
	{"TOKENMGR_ISSUER", "OpenID issuer a person signs in at (tokenmgr login); https, or http to loopback"},
	{"TOKENMGR_CLIENT_ID", "client ID"},
	{"TOKENMGR_CLIENT_SECRET", "client secret"},
	{"TOKENMGR_CLIENT_SECRET_FILE", "a file holding the client secret (instead of TOKENMGR_CLIENT_SECRET)"},
	{"TOKENMGR_SCOPES", "scopes, separated by spaces or commas"},
	{"TOKENMGR_AUDIENCE", `sent as "audience" with the client credentials grant`},
	{"TOKENMGR_AUTH_STYLE", "header | params | auto (default auto): how the client credentials are sent"},
	{"TOKENMGR_REFRESH_TOKEN", "seed for the refresh_token grant; a stored one wins"},
	{"TOKENMGR_ACCESS_TOKEN", "a static token, never refreshed (no TOKEN_URL needed)"},
	{"TOKENMGR_KEY", `credential name in the store (default "default")`},
	{"TOKENMGR_REFRESH_BEFORE", "Go duration, e.g. 5m (default: scaled to the lifetime)"},
	{"TOKENMGR_EXPIRY_DELTA", "Go duration (default: scaled to the lifetime)"},
	{"TOKENMGR_ALLOWED_HOSTS", "hosts the token may go to, separated by spaces or commas (*.example.com for subdomains)"},
	{"TOKENMGR_ALLOW_INSECURE_HTTP", "true to allow plain http to hosts other than loopback"},
	{"TOKENMGR_STORE", "auto | keyring | file | memory | redis (default auto)"},
	{"TOKENMGR_STORE_PATH", "the encrypted file (default under os.UserConfigDir)"},
	{"TOKENMGR_STORE_PASSPHRASE", "its passphrase; with redis, the fleet's passphrase, the same on every replica"},
	{"TOKENMGR_STORE_PASSPHRASE_FILE", "a file holding the passphrase (instead of TOKENMGR_STORE_PASSPHRASE)"},
	{"TOKENMGR_KEY_CACHE", "on | off (default on): keep the key derived from the passphrase for 15 minutes in the kernel keyring (Linux), readable by this user's processes, so the next run skips scrypt"},
	{"TOKENMGR_REDIS_URL", "with TOKENMGR_STORE=redis: redis://[user:password@]host[:port][/db], rediss:// for TLS; ?master_name=<name> for Sentinel, ?addr=host:port&addr=… for more Cluster nodes"},
}
