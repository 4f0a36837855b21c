// Package envconfig reads tokenmgr's configuration from TOKENMGR_*
// environment variables: the one reader ([Read]) that
// tokenmgr.NewFromEnv, the tokenmgr command, package diagnose and awscreds
// share, the table of the variables ([Vars], [Docs]) and which of them
// hold secrets, and the store the variables name ([Env.OpenStore], with
// stores of other modules registered by [RegisterStore]).
//
// A program that only wants a Client calls tokenmgr.NewFromEnv; this
// package is for programs that show, check or extend the configuration.
package envconfig

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/classify"
	"github.com/tokenmgr/tokenmgr/display"
	"github.com/tokenmgr/tokenmgr/internal/wire"
	"github.com/tokenmgr/tokenmgr/secretfile"
	"github.com/tokenmgr/tokenmgr/store"
)

// Prefix starts the name of every variable tokenmgr reads.
const Prefix = "TOKENMGR_"

// DefaultKey is the credential name when TOKENMGR_KEY is not set
// (tokenmgr.DefaultKey is this constant).
const DefaultKey = "default"

// KeyringService is the service name tokenmgr's credentials have in the OS
// keyring.
const KeyringService = "tokenmgr"

// Vars lists every variable [Read] reads, in documentation order ([Docs]
// documents each).
var Vars = []string{
	"TOKENMGR_TOKEN_URL", "TOKENMGR_ISSUER", "TOKENMGR_CLIENT_ID", "TOKENMGR_CLIENT_SECRET", "TOKENMGR_CLIENT_SECRET_FILE",
	"TOKENMGR_SCOPES", "TOKENMGR_AUDIENCE", "TOKENMGR_AUTH_STYLE", "TOKENMGR_REFRESH_TOKEN",
	"TOKENMGR_ACCESS_TOKEN", "TOKENMGR_KEY", "TOKENMGR_REFRESH_BEFORE", "TOKENMGR_EXPIRY_DELTA",
	"TOKENMGR_ALLOWED_HOSTS", "TOKENMGR_ALLOW_INSECURE_HTTP", "TOKENMGR_STORE", "TOKENMGR_STORE_PATH",
	"TOKENMGR_STORE_PASSPHRASE", "TOKENMGR_STORE_PASSPHRASE_FILE", "TOKENMGR_KEY_CACHE", "TOKENMGR_REDIS_URL",
}

// secretVars are never shown, only as set or unset.
var secretVars = map[string]bool{
	"TOKENMGR_CLIENT_SECRET": true, "TOKENMGR_REFRESH_TOKEN": true,
	"TOKENMGR_ACCESS_TOKEN": true, "TOKENMGR_STORE_PASSPHRASE": true,
	"TOKENMGR_REDIS_URL": true, // may hold a password
}

// IsSecret reports whether the variable holds a secret that must never be
// shown.
func IsSecret(name string) bool { return secretVars[name] }

// credentialVars say how to get a token; the store needs none of them.
var credentialVars = map[string]bool{
	"TOKENMGR_TOKEN_URL": true, "TOKENMGR_ISSUER": true, "TOKENMGR_CLIENT_ID": true, "TOKENMGR_CLIENT_SECRET": true,
	"TOKENMGR_CLIENT_SECRET_FILE": true, "TOKENMGR_REFRESH_TOKEN": true, "TOKENMGR_ACCESS_TOKEN": true,
}

// IsCredential reports whether the variable says how to get a token (as
// opposed to where it is kept or how it is used).
func IsCredential(name string) bool { return credentialVars[name] }

// Error is a bad environment variable. It names the variable and what is
// wrong, never the value of a secret.
type Error struct {
	Var     string
	Problem string
	Err     error
}

func (e *Error) Error() string { return "tokenmgr: " + e.Var + ": " + e.Problem }

// Unwrap returns the underlying error, if any.
func (e *Error) Unwrap() error { return e.Err }

// Env is the configuration read from the environment. Its String and
// LogValue show no secret.
type Env struct {
	TokenURL string
	// Issuer is an OpenID issuer a person signs in at (TOKENMGR_ISSUER):
	// the credential is the one "tokenmgr login" saved (see
	// [ErrLoginRequired]).
	Issuer            string
	ClientID          string
	ClientSecret      string
	Scopes            []string
	Audience          string
	AuthStyle         oauth2.AuthStyle
	RefreshToken      string
	AccessToken       string
	Key               string
	RefreshBefore     time.Duration
	ExpiryDelta       time.Duration
	AllowedHosts      []string
	AllowInsecureHTTP bool
	Store             string // auto, keyring, file, memory, or a registered store such as redis
	StorePath         string
	StorePassphrase   []byte
	KeyCacheOff       bool   // TOKENMGR_KEY_CACHE=off: no session cache of the key derived from the passphrase
	RedisURL          string // for TOKENMGR_STORE=redis; may hold a password
	// Set lists the variables that were set, in [Vars] order.
	Set []string
}

// Need says what [Read] requires of the variables.
type Need int

const (
	// NeedCredential: the variables must say how to get a token
	// (TOKENMGR_TOKEN_URL with a client, TOKENMGR_ISSUER, or
	// TOKENMGR_ACCESS_TOKEN), as tokenmgr.NewFromEnv needs.
	NeedCredential Need = iota
	// NeedStore: work on the store alone (list, status, logout,
	// diagnose). When the credential variables are unusable (one not
	// set, or a bad or conflicting value) they are left out and the store
	// settings read alone; any other bad value is an error.
	NeedStore
	// NeedNothing: each value set is parsed and checked, none is required
	// (a program that adds settings of its own, such as awscreds).
	NeedNothing
)

// Read parses the TOKENMGR_* variables through lookup (os.LookupEnv when
// nil), reading the _FILE variables' files, and checks what need asks
// for. It is the one reader of the variables: tokenmgr.NewFromEnv, the
// tokenmgr command, package diagnose and awscreds all use it. The first
// bad value is an *[Error] naming the variable, never a secret's value.
func Read(lookup func(string) (string, bool), need Need) (*Env, error) {
	switch need {
	case NeedNothing:
		return parse(lookup)
	case NeedStore:
		return readStore(lookup)
	}
	return readCredential(lookup)
}

// readCredential is Read(lookup, NeedCredential).
func readCredential(lookup func(string) (string, bool)) (*Env, error) {
	e, err := parse(lookup)
	if err != nil {
		return nil, err
	}
	bad := func(name, problem string) error { return &Error{Var: name, Problem: problem} }
	switch {
	case e.Issuer != "" && e.TokenURL != "":
		return nil, bad("TOKENMGR_ISSUER", "set together with TOKENMGR_TOKEN_URL; the issuer's discovery document names the token endpoint: set one")
	case e.Issuer != "" && (e.AccessToken != "" || e.RefreshToken != ""):
		return nil, bad("TOKENMGR_ISSUER", "set together with TOKENMGR_ACCESS_TOKEN or TOKENMGR_REFRESH_TOKEN; the signed-in credential comes from tokenmgr login: set one")
	case e.Issuer != "" && e.ClientID == "":
		return nil, bad("TOKENMGR_CLIENT_ID", "not set (needed with TOKENMGR_ISSUER)")
	case e.Issuer != "":
		return e, nil
	case e.TokenURL == "" && e.AccessToken == "":
		return nil, bad("TOKENMGR_TOKEN_URL", "not set (set it, or TOKENMGR_ISSUER to sign in a person, or TOKENMGR_ACCESS_TOKEN for a static token)")
	case e.TokenURL != "" && e.AccessToken != "":
		return nil, bad("TOKENMGR_ACCESS_TOKEN", "set together with TOKENMGR_TOKEN_URL; a static token is never refreshed: set one")
	case e.TokenURL != "" && e.ClientID == "":
		return nil, bad("TOKENMGR_CLIENT_ID", "not set (needed with TOKENMGR_TOKEN_URL)")
	case e.TokenURL != "" && e.RefreshToken == "" && e.ClientSecret == "":
		return nil, bad("TOKENMGR_CLIENT_SECRET", "not set (the client credentials grant needs it, or its _FILE form; or set TOKENMGR_REFRESH_TOKEN)")
	}
	return e, nil
}

// parse is Read(lookup, NeedNothing).
func parse(lookup func(string) (string, bool)) (*Env, error) {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	e := &Env{Key: DefaultKey, Store: "auto", AuthStyle: oauth2.AuthStyleAutoDetect}
	get := func(name string) string {
		v, ok := lookup(name)
		if !ok {
			return ""
		}
		return strings.TrimSpace(v)
	}
	for _, n := range Vars {
		if _, ok := lookup(n); ok {
			e.Set = append(e.Set, n)
		}
	}
	bad := func(name, problem string) error { return &Error{Var: name, Problem: problem} }
	for _, n := range Vars {
		if v, ok := lookup(n); ok && !utf8.ValidString(v) {
			return nil, bad(n, "not valid UTF-8")
		}
	}

	if v := get("TOKENMGR_TOKEN_URL"); v != "" {
		if err := wire.CheckTokenURL(v); err != nil {
			return nil, bad("TOKENMGR_TOKEN_URL", err.Error())
		}
		e.TokenURL = v
	}
	if v := get("TOKENMGR_ISSUER"); v != "" {
		if err := wire.CheckTokenURL(v); err != nil {
			return nil, bad("TOKENMGR_ISSUER", err.Error())
		}
		e.Issuer = v
	}
	e.ClientID = get("TOKENMGR_CLIENT_ID")
	secret, err := secretFrom(get, "TOKENMGR_CLIENT_SECRET", "TOKENMGR_CLIENT_SECRET_FILE")
	if err != nil {
		return nil, err
	}
	e.ClientSecret = string(secret)
	e.Scopes = splitList(get("TOKENMGR_SCOPES"))
	e.Audience = get("TOKENMGR_AUDIENCE")
	switch v := strings.ToLower(get("TOKENMGR_AUTH_STYLE")); v {
	case "", "auto":
	case "header":
		e.AuthStyle = oauth2.AuthStyleInHeader
	case "params":
		e.AuthStyle = oauth2.AuthStyleInParams
	default:
		return nil, bad("TOKENMGR_AUTH_STYLE", fmt.Sprintf("%q is not one of header, params, auto", display.Cut(v, 40)))
	}
	e.RefreshToken = get("TOKENMGR_REFRESH_TOKEN")
	e.AccessToken = get("TOKENMGR_ACCESS_TOKEN")
	if e.AccessToken != "" {
		// It goes in "Authorization: Bearer <token>" as it is (see
		// checkToken): say so now, naming the variable, rather than fail
		// every request with an unusable "token response".
		if len(e.AccessToken) > 7 && strings.EqualFold(e.AccessToken[:7], "bearer ") {
			return nil, bad("TOKENMGR_ACCESS_TOKEN", `starts with "Bearer ": set the token alone, without its type`)
		}
		if i := wire.BadTokenByte(e.AccessToken, true); i >= 0 {
			return nil, bad("TOKENMGR_ACCESS_TOKEN", fmt.Sprintf("not an RFC 6750 b64token, which an Authorization header carries as it is (byte %d of %d)", i, len(e.AccessToken)))
		}
	}
	if v := get("TOKENMGR_KEY"); v != "" {
		if len(v) > 128 || strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return nil, bad("TOKENMGR_KEY", "must be at most 128 printable characters")
		}
		e.Key = v
	}
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{{"TOKENMGR_REFRESH_BEFORE", &e.RefreshBefore}, {"TOKENMGR_EXPIRY_DELTA", &e.ExpiryDelta}} {
		v := get(d.name)
		if v == "" {
			continue
		}
		t, err := time.ParseDuration(v)
		if err != nil || t < 0 {
			return nil, bad(d.name, fmt.Sprintf("%q is not a non-negative Go duration such as 5m or 30s", display.Cut(v, 40)))
		}
		*d.to = t
	}
	e.AllowedHosts = splitList(get("TOKENMGR_ALLOWED_HOSTS"))
	if _, err := classify.NewHostPolicy(e.AllowedHosts, false); err != nil {
		return nil, &Error{Var: "TOKENMGR_ALLOWED_HOSTS", Problem: strings.TrimPrefix(err.Error(), "tokenmgr: AllowedHosts ")}
	}
	if v := get("TOKENMGR_ALLOW_INSECURE_HTTP"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return nil, bad("TOKENMGR_ALLOW_INSECURE_HTTP", fmt.Sprintf("%q is not true or false", display.Cut(v, 40)))
		}
		e.AllowInsecureHTTP = b
	}
	if v := strings.ToLower(get("TOKENMGR_STORE")); v != "" {
		names := storeNames()
		if !slices.Contains(names, v) {
			return nil, bad("TOKENMGR_STORE", fmt.Sprintf("%q is not one of %s", display.Cut(v, 40), strings.Join(names, ", ")))
		}
		e.Store = v
	}
	e.StorePath = get("TOKENMGR_STORE_PATH")
	if e.StorePassphrase, err = secretFrom(get, "TOKENMGR_STORE_PASSPHRASE", "TOKENMGR_STORE_PASSPHRASE_FILE"); err != nil {
		return nil, err
	}
	switch v := strings.ToLower(get("TOKENMGR_KEY_CACHE")); v {
	case "", "on":
	case "off":
		e.KeyCacheOff = true
	default:
		return nil, bad("TOKENMGR_KEY_CACHE", fmt.Sprintf("%q is not on or off", display.Cut(v, 40)))
	}
	e.RedisURL = get("TOKENMGR_REDIS_URL") // parsed by the Redis store, which owns the format
	return e, nil
}

// readStore is Read(lookup, NeedStore).
func readStore(lookup func(string) (string, bool)) (*Env, error) {
	env, err := readCredential(lookup)
	if err == nil {
		return env, nil
	}
	var ee *Error
	if !errors.As(err, &ee) || !credentialVars[ee.Var] {
		return nil, err
	}
	if lookup == nil {
		lookup = os.LookupEnv
	}
	storeOnly := func(name string) (string, bool) {
		if credentialVars[name] {
			return "", false
		}
		return lookup(name)
	}
	env, err2 := parse(storeOnly)
	if err2 != nil {
		return nil, err // the original complaint is the useful one
	}
	return env, nil
}

// secretFrom reads a secret from the variable or from the file the _FILE
// variable names; setting both is an error.
func secretFrom(get func(string) string, name, fileVar string) ([]byte, error) {
	v, path := get(name), get(fileVar)
	switch {
	case v != "" && path != "":
		return nil, &Error{Var: fileVar, Problem: "set together with " + name + "; set one"}
	case path == "":
		return []byte(v), nil
	}
	// The path is not echoed: a secret pasted into the _FILE variable by
	// mistake must not reach an error message.
	b, err := readSecretFile(path)
	if err != nil {
		return nil, &Error{Var: fileVar, Problem: "cannot read the file it names: " + err.Error(), Err: err}
	}
	b = []byte(strings.TrimSpace(string(b))) // as every variable is (Read's get)
	if len(b) == 0 {
		return nil, &Error{Var: fileVar, Problem: "the file it names is empty"}
	}
	return b, nil
}

// maxSecretFile bounds a secret file: a key or passphrase, not /dev/zero.
const maxSecretFile = 64 << 10

// readSecretFile reads a _FILE variable's file by secretfile's rule (a
// regular file, not waited on, bounded); its errors hold no path (see
// secretFrom): only the cause.
func readSecretFile(path string) ([]byte, error) {
	b, err := secretfile.Read(path, maxSecretFile)
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return nil, pe.Err
	}
	return b, err
}

func splitList(v string) []string {
	return strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
}

// OpenStore opens the store TOKENMGR_STORE names. A static access token
// with TOKENMGR_STORE unset needs no store and gets nil.
func (e *Env) OpenStore(ctx context.Context) (store.Store, error) {
	if e.TokenURL == "" && e.AccessToken != "" && !e.isSet("TOKENMGR_STORE") {
		return nil, nil
	}
	switch e.Store {
	case "auto", "keyring", "file", "memory":
	default:
		return e.openRegistered(ctx)
	}
	var path string
	if e.Store != "memory" && e.Store != "keyring" {
		p, err := e.StoreFilePath()
		if err != nil {
			return nil, err
		}
		path = p
	}
	switch e.Store {
	case "memory":
		return store.NewMemory(), nil
	case "keyring":
		return store.NewKeyring(KeyringService), nil
	case "file":
		if len(e.StorePassphrase) == 0 {
			return nil, &Error{Var: "TOKENMGR_STORE_PASSPHRASE", Problem: "not set (TOKENMGR_STORE=file needs it, or its _FILE form)"}
		}
		st, err := store.NewEncryptedFile(path, e.StorePassphrase, e.FileOptions())
		if err != nil {
			return nil, err // a true nil, whatever the constructor returns
		}
		return st, nil
	}
	st, err := store.Auto(ctx, KeyringService, path, e.StorePassphrase, e.FileOptions())
	if err != nil {
		return nil, fmt.Errorf("%w; or TOKENMGR_STORE=memory to keep tokens in memory only", err)
	}
	return st, nil
}

// FileOptions are the encrypted file's options the variables set: with
// TOKENMGR_KEY_CACHE=off, no session key cache.
func (e *Env) FileOptions() store.FileOptions {
	var o store.FileOptions
	if e.KeyCacheOff {
		o.KeyCacheTTL = -1
	}
	return o
}

// StoreFilePath returns the encrypted file the store settings name:
// TOKENMGR_STORE_PATH, else [store.DefaultFilePath]. It is the file
// TOKENMGR_STORE=file uses, and auto when no keyring answers.
func (e *Env) StoreFilePath() (string, error) {
	if e.StorePath != "" {
		return e.StorePath, nil
	}
	p, err := store.DefaultFilePath()
	if err != nil {
		return "", &Error{Var: "TOKENMGR_STORE_PATH", Problem: "not set and no default: " + err.Error(), Err: err}
	}
	return p, nil
}

func (e *Env) isSet(name string) bool {
	for _, n := range e.Set {
		if n == name {
			return true
		}
	}
	return false
}

// String lists the variables that are set, secrets as "set" only. Value
// receivers, so an Env printed by value shows no secret either.
func (e Env) String() string {
	var b strings.Builder
	b.WriteString("envconfig.Env{")
	for i, n := range e.Set {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString(strings.TrimPrefix(n, Prefix))
	}
	b.WriteString("}")
	return b.String()
}

// GoString keeps %#v from printing the secrets field by field.
func (e Env) GoString() string { return e.String() }

// LogValue shows the non-secret settings.
func (e Env) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("token_url", display.URL(e.TokenURL)),
		slog.String("issuer", display.URL(e.Issuer)),
		slog.String("client_id", e.ClientID),
		slog.Bool("client_secret_set", e.ClientSecret != ""),
		slog.Bool("refresh_token_set", e.RefreshToken != ""),
		slog.Bool("access_token_set", e.AccessToken != ""),
		slog.String("key", e.Key),
		slog.String("store", e.Store),
	)
}

// MarshalJSON writes the non-secret settings, and for each secret only
// whether it is set, so that an Env logged or dumped as JSON shows no
// secret (as with [Env.String] and [Env.LogValue]).
func (e Env) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		TokenURL           string        `json:"token_url,omitempty"`
		Issuer             string        `json:"issuer,omitempty"`
		ClientID           string        `json:"client_id,omitempty"`
		ClientSecretSet    bool          `json:"client_secret_set"`
		Scopes             []string      `json:"scopes,omitempty"`
		Audience           string        `json:"audience,omitempty"`
		AuthStyle          int           `json:"auth_style"`
		RefreshTokenSet    bool          `json:"refresh_token_set"`
		AccessTokenSet     bool          `json:"access_token_set"`
		Key                string        `json:"key,omitempty"`
		RefreshBefore      time.Duration `json:"refresh_before,omitempty"`
		ExpiryDelta        time.Duration `json:"expiry_delta,omitempty"`
		AllowedHosts       []string      `json:"allowed_hosts,omitempty"`
		AllowInsecureHTTP  bool          `json:"allow_insecure_http,omitempty"`
		Store              string        `json:"store,omitempty"`
		StorePath          string        `json:"store_path,omitempty"`
		StorePassphraseSet bool          `json:"store_passphrase_set"`
		Set                []string      `json:"set,omitempty"`
	}{
		TokenURL: display.URL(e.TokenURL), Issuer: display.URL(e.Issuer), ClientID: e.ClientID, ClientSecretSet: e.ClientSecret != "",
		Scopes: e.Scopes, Audience: e.Audience, AuthStyle: int(e.AuthStyle),
		RefreshTokenSet: e.RefreshToken != "", AccessTokenSet: e.AccessToken != "",
		Key: e.Key, RefreshBefore: e.RefreshBefore, ExpiryDelta: e.ExpiryDelta,
		AllowedHosts: e.AllowedHosts, AllowInsecureHTTP: e.AllowInsecureHTTP,
		Store: e.Store, StorePath: e.StorePath, StorePassphraseSet: len(e.StorePassphrase) > 0,
		Set: e.Set,
	})
}
