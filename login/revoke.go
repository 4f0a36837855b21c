package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/tokenmgr/tokenmgr/redact"
	"github.com/tokenmgr/tokenmgr/store/record"
)

// ErrNoRevocation is matched by [Revoke]'s error when the issuer names no
// revocation_endpoint: the sign-in can only be forgotten here.
var ErrNoRevocation = errors.New("login: the issuer names no revocation_endpoint")

// Revoke revokes the sign-in stored under cfg.Store/cfg.Key at the
// issuer's revocation endpoint (RFC 7009): its refresh token, which ends
// the grant, else its access token. A credential another configuration
// saved under the key is not sent: the error matches
// [tokenmgr.ErrKeyInUse]. It deletes nothing: signing out
// deletes the stored credential after it. Nothing stored is no error.
func Revoke(ctx context.Context, cfg Config) error {
	if err := cfg.check(); err != nil {
		return err
	}
	if cfg.Store == nil {
		return nil
	}
	r, err := record.Load(ctx, cfg.Store, cfg.key())
	if err != nil || r == nil {
		return err
	}
	// Another configuration's token (AWS credentials, another issuer's
	// sign-in) is not this issuer's to revoke: it is never sent there.
	if err := cfg.foreign(r, "nothing was sent to the issuer"); err != nil {
		return err
	}
	ep, err := resolve(ctx, &cfg)
	if err != nil {
		return err
	}
	if ep.Revocation == "" {
		return ErrNoRevocation
	}
	tok, hint := r.RefreshToken, "refresh_token"
	if tok == "" {
		tok, hint = r.AccessToken, "access_token"
	}
	form := url.Values{"token": {tok}, "token_type_hint": {hint}}
	if cfg.ClientSecret == "" {
		form.Set("client_id", cfg.ClientID)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ep.Revocation, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("login: revocation request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cfg.ClientSecret != "" {
		req.SetBasicAuth(url.QueryEscape(cfg.ClientID), url.QueryEscape(cfg.ClientSecret))
	}
	resp, err := cfg.httpClient().Do(req)
	if err != nil {
		return redacted("login: revoking at the issuer", err, &cfg, tok)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	var e struct {
		Code        string `json:"error"`
		Description string `json:"error_description"`
	}
	json.Unmarshal(body, &e)
	if e.Code == "unsupported_token_type" && hint == "access_token" {
		return nil // RFC 7009 §2.2.1: the server revokes no access tokens; the grant had no refresh token
	}
	red := redact.New(tok)
	red.AddClient(cfg.ClientID, cfg.ClientSecret)
	msg := fmt.Sprintf("answered %d", resp.StatusCode)
	if e.Code != "" {
		msg += " " + e.Code
	}
	if e.Description != "" {
		msg += ": " + e.Description
	}
	return &issuerError{what: "login: revoking at the issuer", msg: printable(red.Redact(msg), 300), Code: printable(e.Code, 60)}
}
