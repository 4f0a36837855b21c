package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/tokenmgr/tokenmgr/classify"
	"github.com/tokenmgr/tokenmgr/display"
)

// endpoints are where one sign-in goes: discovered from the issuer, or
// Config.Endpoint.
type endpoints struct {
	oauth2.Endpoint
	Revocation string
	provider   *oidc.Provider // nil without an issuer: no ID token can be verified
	sendsIss   bool           // the issuer puts "iss" in its authorization responses (RFC 9207)
}

// discovery is the part of an OpenID Provider Metadata document
// (OpenID Connect Discovery 1.0 §3, RFC 8414, RFC 8628 §4, RFC 7009)
// a sign-in uses.
type discovery struct {
	Issuer        string   `json:"issuer"`
	Authorization string   `json:"authorization_endpoint"`
	Token         string   `json:"token_endpoint"`
	Device        string   `json:"device_authorization_endpoint"`
	Revocation    string   `json:"revocation_endpoint"`
	JWKS          string   `json:"jwks_uri"`
	Algorithms    []string `json:"id_token_signing_alg_values_supported"`
	// SendsIss: the issuer puts "iss" in every authorization response
	// (RFC 9207 §3), so one without it did not come from the issuer.
	SendsIss lenientBool `json:"authorization_response_iss_parameter_supported"`
}

// lenientBool is a metadata flag read without failing discovery: true or
// "true" is true, anything else false. A quirk in a flag the refresh of
// a running sign-in does not use must not stop it.
type lenientBool bool

func (b *lenientBool) UnmarshalJSON(data []byte) error {
	s := string(data)
	*b = lenientBool(s == "true" || s == `"true"`)
	return nil
}

// maxDiscovery bounds the discovery document: metadata, not a download.
const maxDiscovery = 1 << 20

// resolve finds the endpoints: from the issuer's discovery document, or
// cfg.Endpoint when there is no issuer.
//
// The document is fetched and checked here rather than by
// oidc.NewProvider, which reads a body of any size and quotes all of it in
// its error; go-oidc still verifies every ID token (oidc.ProviderConfig).
func resolve(ctx context.Context, cfg *Config) (*endpoints, error) {
	if cfg.Issuer == "" {
		ep := &endpoints{Endpoint: cfg.Endpoint}
		for _, u := range []struct{ name, v string }{
			{"Endpoint.AuthURL", ep.AuthURL}, {"Endpoint.TokenURL", ep.TokenURL}, {"Endpoint.DeviceAuthURL", ep.DeviceAuthURL},
		} {
			if u.v == "" {
				continue
			}
			if err := checkURL(u.name, u.v); err != nil {
				return nil, err
			}
		}
		return ep, nil
	}
	if err := checkURL("Issuer", cfg.Issuer); err != nil {
		return nil, err
	}
	where := strings.TrimSuffix(cfg.Issuer, "/") + "/.well-known/openid-configuration"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, where, nil)
	if err != nil {
		return nil, fmt.Errorf("login: discovery at %s: %w", display.URL(where), err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := cfg.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("login: discovery: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDiscovery+1))
	if err != nil {
		return nil, fmt.Errorf("login: discovery at %s: reading the answer: %w", display.URL(where), err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("login: discovery at %s answered %s", display.URL(where), display.Printable(resp.Status, 100))
	}
	d, err := parseDiscovery(cfg.Issuer, body)
	if err != nil {
		return nil, fmt.Errorf("login: discovery at %s: %w", display.URL(where), err)
	}
	pc := &oidc.ProviderConfig{
		IssuerURL: d.Issuer, AuthURL: d.Authorization, TokenURL: d.Token, DeviceAuthURL: d.Device,
		JWKSURL: d.JWKS, Algorithms: d.Algorithms,
	}
	return &endpoints{
		Endpoint:   oauth2.Endpoint{AuthURL: d.Authorization, TokenURL: d.Token, DeviceAuthURL: d.Device},
		Revocation: d.Revocation,
		provider:   pc.NewProvider(oidc.ClientContext(ctx, cfg.httpClient())),
		sendsIss:   bool(d.SendsIss),
	}, nil
}

// parseDiscovery reads a discovery document for issuer and checks it:
// its issuer is the configured one exactly, and every endpoint is https
// (or http to loopback). Its errors quote no more than a cut URL.
func parseDiscovery(issuer string, body []byte) (*discovery, error) {
	if len(body) > maxDiscovery {
		return nil, fmt.Errorf("document larger than %d KiB", maxDiscovery>>10)
	}
	var d discovery
	if err := json.Unmarshal(body, &d); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return nil, fmt.Errorf("not JSON (at byte %d)", se.Offset)
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("field %q has the wrong type", display.Cut(te.Field, 60))
		}
		return nil, errors.New("not a JSON object")
	}
	if d.Issuer != issuer {
		return nil, fmt.Errorf("the document names issuer %q, not %q as configured: it must be the same exactly",
			display.Cut(display.OneLine(d.Issuer), 100), display.Cut(issuer, 100))
	}
	if d.Token == "" {
		return nil, errors.New("no token_endpoint")
	}
	for _, u := range []struct{ name, v string }{
		{"authorization_endpoint", d.Authorization}, {"token_endpoint", d.Token},
		{"device_authorization_endpoint", d.Device}, {"revocation_endpoint", d.Revocation}, {"jwks_uri", d.JWKS},
	} {
		if u.v == "" {
			continue
		}
		if err := checkURL(u.name, u.v); err != nil {
			return nil, err
		}
	}
	return &d, nil
}

// checkURL checks that v is an absolute https URL, or http to loopback
// (RFC 8252 §8.3: a secret never crosses a network in the clear).
func checkURL(name, v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("login: %s %q is not an absolute URL", name, display.Cut(display.OneLine(v), 100))
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http":
		if !classify.IsLoopback(u.Hostname()) {
			return fmt.Errorf("login: %s %s is plain http to a host that is not loopback: use https: %w", name, display.URL(v), ErrNotLoopback)
		}
	default:
		return fmt.Errorf("login: %s %s: scheme %q is not https", name, display.URL(v), display.Cut(u.Scheme, 20))
	}
	if u.Fragment != "" || (name == "Issuer" && u.RawQuery != "") {
		return fmt.Errorf("login: %s %s has a query or fragment", name, display.URL(v))
	}
	return nil
}

// loopbackAddr reports whether a listener's address is a loopback IP.
func loopbackAddr(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
