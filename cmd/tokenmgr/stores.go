package main

// Stores in their own modules, registered for TOKENMGR_STORE: the command
// offers every store, while a library user compiles only those imported.
import _ "github.com/tokenmgr/tokenmgr/store/redisstore" // TOKENMGR_STORE=redis

// The person's sign-in (TOKENMGR_ISSUER), in its own module for go-oidc.
import _ "github.com/tokenmgr/tokenmgr/login"
