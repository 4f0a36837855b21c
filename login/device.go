package login

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/redact"
)

// maxDeviceWait bounds a device login whose server gave no expires_in
// (RFC 8628 requires one).
const maxDeviceWait = 15 * time.Minute

// Device signs a person in with the device authorization grant (RFC
// 8628): it asks for a user code, shows it with OnDeviceCode, and polls
// the token endpoint at the server's interval (5 s more after each
// slow_down) until the person approves, denies (the error matches
// [ErrDenied] and carries the server's reason), the code expires, or ctx
// ends (the error wraps ctx.Err()). It never polls past expires_in. The
// ID token is verified and the result saved as by [Browser].
func Device(ctx context.Context, cfg Config) (*oauth2.Token, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	ep, err := resolve(ctx, &cfg)
	if err != nil {
		return nil, err
	}
	if ep.DeviceAuthURL == "" {
		return nil, errors.New("login: the issuer names no device_authorization_endpoint: use the browser login")
	}
	oc := cfg.oauth2Config(ep, "")
	hctx := cfg.context(ctx)
	da, err := oc.DeviceAuth(hctx)
	if err != nil {
		return nil, redacted("login: asking for a device code", err, &cfg)
	}
	if da.DeviceCode == "" || da.UserCode == "" || da.VerificationURI == "" {
		return nil, errors.New("login: the device authorization answer lacks a device_code, user_code or verification_uri")
	}
	if err := checkURL("verification_uri", da.VerificationURI); err != nil {
		return nil, err
	}
	if da.VerificationURIComplete != "" {
		if err := checkURL("verification_uri_complete", da.VerificationURIComplete); err != nil {
			return nil, err
		}
	}
	if da.Expiry.IsZero() || time.Until(da.Expiry) > maxDeviceWait {
		da.Expiry = time.Now().Add(maxDeviceWait)
	}
	if err := cfg.showCodeBounded(ctx, da); err != nil {
		return nil, err
	}
	obtained := time.Now()
	tok, err := oc.DeviceAccessToken(hctx, da)
	if err != nil {
		var re *oauth2.RetrieveError
		switch {
		case ctx.Err() != nil:
			return nil, fmt.Errorf("login: waiting for the device sign-in: %w", ctx.Err())
		case errors.Is(err, context.DeadlineExceeded):
			return nil, errors.New("login: the device code expired before the sign-in was approved: run the login again")
		case errors.As(err, &re) && re.ErrorCode == "access_denied":
			return nil, &deniedError{Code: "access_denied", Description: printable(re.ErrorDescription, 200)}
		case errors.As(err, &re) && re.ErrorCode == "expired_token":
			return nil, errors.New("login: the device code expired before the sign-in was approved: run the login again")
		}
		return nil, redacted("login: polling the token endpoint", err, &cfg, da.DeviceCode)
	}
	return cfg.finish(ctx, ep, tok, "", obtained)
}

// showCodeBounded runs showCode on a goroutine of its own and waits for
// it until ctx ends or the code expires: an OnDeviceCode that blocks
// (which it must not) ends the sign-in with an error rather than hang it.
// The goroutine is left to return when the callback does.
func (c *Config) showCodeBounded(ctx context.Context, da *oauth2.DeviceAuthResponse) error {
	shown := make(chan error, 1)
	go func() { shown <- c.showCode(da) }()
	t := time.NewTimer(time.Until(da.Expiry))
	defer t.Stop()
	select {
	case err := <-shown:
		return err
	case <-ctx.Done():
		return fmt.Errorf("login: OnDeviceCode did not return (it must not block): %w", ctx.Err())
	case <-t.C:
		return errors.New("login: OnDeviceCode did not return (it must not block) before the device code expired")
	}
}

// showCode runs OnDeviceCode (or prints the code), a panic in it being an
// error whose text shows no device code (the callback has it, and the
// code is what polls for the token).
func (c *Config) showCode(da *oauth2.DeviceAuthResponse) (err error) {
	defer func() {
		if r := recover(); r != nil {
			red := &redact.Redactor{}
			red.Add(da.DeviceCode)
			err = fmt.Errorf("login: OnDeviceCode panicked: %s", printable(red.Redact(fmt.Sprint(r)), 300))
		}
	}()
	if c.OnDeviceCode != nil {
		c.OnDeviceCode(da)
		return nil
	}
	w := c.prompt()
	if da.VerificationURIComplete != "" {
		fmt.Fprintf(w, "To sign in, open\n\n  %s\n\nor open %s and enter the code %s\n\n", da.VerificationURIComplete, da.VerificationURI, printable(da.UserCode, 40))
	} else {
		fmt.Fprintf(w, "To sign in, open %s and enter the code\n\n  %s\n\n", da.VerificationURI, printable(da.UserCode, 40))
	}
	return nil
}
