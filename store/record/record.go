// Package record encodes a token as the bytes tokenmgr keeps in a store.
//
// The encoding is JSON with a format version, so a newer tokenmgr can read
// what an older one wrote and an older one refuses, by name, what it cannot
// read:
//
//	{"v":1,"access_token":"…","token_type":"Bearer","refresh_token":"…",
//	 "expiry":"2026-01-02T15:04:05Z","obtained":"2026-01-02T14:04:05Z",
//	 "scope":"a b","id_token":"…","source":"3f2a…",
//	 "config":"client_credentials grant at https://…, client app"}
//
// AWS temporary credentials (package awscreds) are a record too: the
// session token is the access token, and the access key ID and secret
// access key ride along as "aws_access_key_id" and "aws_secret_access_key"
// (token extras [ExtraAWSAccessKeyID] and [ExtraAWSSecretAccessKey]).
package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"
)

// Version is the record format this package writes.
const Version = 1

// Token extras (oauth2.Token.Extra) that carry the parts of AWS temporary
// credentials other than the session token, which is the access token.
const (
	ExtraAWSAccessKeyID     = "aws_access_key_id"
	ExtraAWSSecretAccessKey = "aws_secret_access_key"
)

// ErrFormat is wrapped by every decoding error.
var ErrFormat = errors.New("record: malformed credential record")

// ErrNewer is wrapped (with ErrFormat) when a record was written by a newer
// tokenmgr: it must not be overwritten by this one, which would lose what
// it cannot read.
var ErrNewer = errors.New("record: written by a newer tokenmgr")

// Record is a stored credential.
type Record struct {
	V            int       `json:"v"`
	AccessToken  string    `json:"access_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	// Obtained is when the token was fetched; with Expiry it gives the
	// lifetime the refresh windows scale with.
	Obtained time.Time `json:"obtained,omitzero"`
	Scope    string    `json:"scope,omitempty"`
	IDToken  string    `json:"id_token,omitempty"`
	// Source identifies the configuration that fetched the token (a hash
	// of grant, token URL, client ID, scopes and parameters, never of a
	// secret), so a changed configuration does not adopt it.
	Source string `json:"source,omitempty"`
	// Config describes that configuration for people (grant, token URL,
	// client ID; an AWS role), never a secret: a refusal to overwrite the
	// record, and tokenmgr status and list, name it.
	Config string `json:"config,omitempty"`
	// AWSAccessKeyID and AWSSecretAccessKey complete AWS temporary
	// credentials, whose session token is AccessToken.
	AWSAccessKeyID     string `json:"aws_access_key_id,omitempty"`
	AWSSecretAccessKey string `json:"aws_secret_access_key,omitempty"`
}

// FromToken builds a record from tok, fetched at obtained.
func FromToken(tok *oauth2.Token, obtained time.Time) *Record {
	r := &Record{
		V:            Version,
		AccessToken:  tok.AccessToken,
		TokenType:    tok.TokenType,
		RefreshToken: tok.RefreshToken,
		Expiry:       tok.Expiry,
		Obtained:     obtained,
	}
	if s, ok := tok.Extra("scope").(string); ok {
		r.Scope = s
	}
	if s, ok := tok.Extra("id_token").(string); ok {
		r.IDToken = s
	}
	if s, ok := tok.Extra(ExtraAWSAccessKeyID).(string); ok {
		r.AWSAccessKeyID = s
	}
	if s, ok := tok.Extra(ExtraAWSSecretAccessKey).(string); ok {
		r.AWSSecretAccessKey = s
	}
	return r
}

// Token returns the record as an oauth2 token, with scope, id_token and
// the AWS key pair available through Token.Extra.
func (r *Record) Token() *oauth2.Token {
	t := &oauth2.Token{
		AccessToken:  r.AccessToken,
		TokenType:    r.TokenType,
		RefreshToken: r.RefreshToken,
		Expiry:       r.Expiry,
	}
	extra := map[string]any{}
	if r.Scope != "" {
		extra["scope"] = r.Scope
	}
	if r.IDToken != "" {
		extra["id_token"] = r.IDToken
	}
	if r.AWSAccessKeyID != "" {
		extra[ExtraAWSAccessKeyID] = r.AWSAccessKeyID
	}
	if r.AWSSecretAccessKey != "" {
		extra[ExtraAWSSecretAccessKey] = r.AWSSecretAccessKey
	}
	if len(extra) > 0 {
		t = t.WithExtra(extra)
	}
	return t
}

// Encode returns the stored form of r.
func (r *Record) Encode() ([]byte, error) {
	c := *r
	c.V = Version
	return json.Marshal(&c)
}

// Decode parses a stored record. It never returns a secret in its error.
func Decode(b []byte) (*Record, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrFormat)
	}
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		// json errors quote at most a type name or offset, never the value,
		// except SyntaxError which quotes one character: keep only the offset.
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("%w: invalid JSON at byte %d", ErrFormat, se.Offset)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%w: field %q has the wrong type", ErrFormat, te.Field)
		}
		return nil, fmt.Errorf("%w: cannot decode", ErrFormat)
	}
	switch {
	case r.V == 0:
		return nil, fmt.Errorf("%w: no format version", ErrFormat)
	case r.V > Version:
		return nil, fmt.Errorf("%w: %w: format version %d, this tokenmgr reads %d; upgrade tokenmgr", ErrFormat, ErrNewer, r.V, Version)
	case r.V < 0:
		return nil, fmt.Errorf("%w: format version %d", ErrFormat, r.V)
	case r.AccessToken == "" && r.RefreshToken == "":
		return nil, fmt.Errorf("%w: holds neither an access token nor a refresh token", ErrFormat)
	}
	return &r, nil
}

// Kind says what r holds, for people: "AWS credentials", "an OAuth token"
// or "an OAuth refresh token" (one held without an access token).
func (r *Record) Kind() string {
	switch {
	case r.AWSAccessKeyID != "":
		return "AWS credentials"
	case r.AccessToken == "":
		return "an OAuth refresh token"
	}
	return "an OAuth token"
}

// Configuration names the configuration that saved r, for people: its
// description, else its fingerprint, else "" (a record of a source that
// does not say).
func (r *Record) Configuration() string {
	switch {
	case r.Config != "":
		return r.Config
	case r.Source != "":
		return "fingerprint " + r.Source
	}
	return ""
}
