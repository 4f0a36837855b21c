package tokenmgr

import (
	"errors"
	"sync"

	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/envconfig"
)

// ErrLoginRequired is matched (errors.Is) by the error of a credential a
// person signs in to (package login, TOKENMGR_ISSUER) when no sign-in is
// stored, or when the token endpoint refused the stored refresh token
// (invalid_grant: revoked, expired, signed out elsewhere). Only the person
// can mend it, by signing in again; the message says how.
var ErrLoginRequired = errors.New("tokenmgr: sign-in required: run tokenmgr login")

var loginRegistry struct {
	mu  sync.RWMutex
	new func(e *envconfig.Env) oauth2.TokenSource
}

// RegisterLogin makes TOKENMGR_ISSUER usable: package login (its own
// module, with the OpenID dependencies) calls it from an init function,
// giving the source of the signed-in credential the variables describe,
// so a program that imports it serves that credential from [NewFromEnv]
// while programs that do not never compile go-oidc. It panics when called
// twice or with nil.
func RegisterLogin(source func(e *envconfig.Env) oauth2.TokenSource) {
	if source == nil {
		panic("tokenmgr: RegisterLogin: nil source")
	}
	loginRegistry.mu.Lock()
	defer loginRegistry.mu.Unlock()
	if loginRegistry.new != nil {
		panic("tokenmgr: RegisterLogin: registered twice")
	}
	loginRegistry.new = source
}

// loginPackage serves TOKENMGR_ISSUER.
const loginPackage = "github.com/tokenmgr/tokenmgr/login"

// loginSource returns the registered source for e's issuer, or says which
// package to import.
func loginSource(e *envconfig.Env) (oauth2.TokenSource, error) {
	loginRegistry.mu.RLock()
	newSource := loginRegistry.new
	loginRegistry.mu.RUnlock()
	if newSource == nil {
		return nil, &envconfig.Error{Var: "TOKENMGR_ISSUER", Problem: "signing in a person needs the login package compiled in: import _ \"" +
			loginPackage + "\" in the program (the tokenmgr command includes it)"}
	}
	src := newSource(e)
	if src == nil {
		return nil, &envconfig.Error{Var: "TOKENMGR_ISSUER", Problem: "the login package returned no token source"}
	}
	return src, nil
}

// errSource is a source that fails with err: what [SourceFromEnv]
// returns when the variables name a source this program cannot build.
type errSource struct{ err error }

func (s errSource) Token() (*oauth2.Token, error) { return nil, s.err }
