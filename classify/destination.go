package classify

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// Why a token is not sent; tokenmgr's errors of the same names are these.
var (
	// ErrInsecureHTTP is returned instead of sending a token over plain
	// http to a host other than loopback.
	ErrInsecureHTTP = errors.New("tokenmgr: refusing to send a token over plain http")
	// ErrHostNotAllowed is returned instead of sending a token to a host
	// not in AllowedHosts.
	ErrHostNotAllowed = errors.New("tokenmgr: host not in AllowedHosts")
)

// HostPolicy decides which requests may carry the token: tokenmgr's
// transport checks each request with it. See [CheckDestination].
type HostPolicy struct {
	exact    []string // lower-case host names
	suffixes []string // ".example.com" for "*.example.com"
	insecure bool
}

// NewHostPolicy returns the policy of a Client configured with allowed
// (tokenmgr.Config.AllowedHosts) and insecure
// (tokenmgr.Config.AllowInsecureHTTP), or an error naming an entry of
// allowed that is not a host name or *.domain.
func NewHostPolicy(allowed []string, insecure bool) (*HostPolicy, error) {
	p := &HostPolicy{insecure: insecure}
	for _, h := range allowed {
		h = strings.ToLower(strings.TrimSpace(h))
		switch {
		case h == "":
			continue
		case strings.HasPrefix(h, "*.") && len(h) > 2 && !strings.Contains(h[2:], "*"):
			p.suffixes = append(p.suffixes, h[1:])
		case strings.ContainsAny(h, "*/:@ "):
			return nil, fmt.Errorf("tokenmgr: AllowedHosts entry %q: want a host name or *.domain", h)
		default:
			p.exact = append(p.exact, h)
		}
	}
	return p, nil
}

// CheckDestination reports whether the transport of a Client configured
// with allowedHosts (tokenmgr.Config.AllowedHosts) and allowInsecureHTTP
// (tokenmgr.Config.AllowInsecureHTTP) would send its token to u: nil when it would,
// else why not, as an error matching [ErrHostNotAllowed], [ErrInsecureHTTP]
// or [ErrNotAbsoluteURL]. It is the transport's own rule, for tools (such as
// package diagnose) that check a URL before any token goes there.
func CheckDestination(u *url.URL, allowedHosts []string, allowInsecureHTTP bool) error {
	p, err := NewHostPolicy(allowedHosts, allowInsecureHTTP)
	if err != nil {
		return err
	}
	if u == nil || u.Host == "" {
		return ErrNotAbsoluteURL
	}
	return p.Check(u)
}

// ErrNotAbsoluteURL is returned by [CheckDestination] for a URL without a
// host.
var ErrNotAbsoluteURL = errors.New("tokenmgr: not an absolute URL")

// Check returns nil when a request to u may carry the token, else why
// not, matching [ErrInsecureHTTP] or [ErrHostNotAllowed].
func (p *HostPolicy) Check(u *url.URL) error {
	open := len(p.exact) == 0 && len(p.suffixes) == 0
	if open && u.Scheme == "https" {
		return nil // every request's case: no host to parse
	}
	host := u.Hostname()
	switch {
	case strings.EqualFold(u.Scheme, "https"):
	case strings.EqualFold(u.Scheme, "http"):
		if !p.insecure && !IsLoopback(host) {
			return fmt.Errorf("%w to %s (use https, or set AllowInsecureHTTP)", ErrInsecureHTTP, host)
		}
	default:
		return fmt.Errorf("tokenmgr: unsupported URL scheme %q", u.Scheme)
	}
	if open {
		return nil
	}
	for _, h := range p.exact {
		if strings.EqualFold(h, host) {
			return nil
		}
	}
	for _, s := range p.suffixes {
		if len(host) > len(s) && strings.EqualFold(host[len(host)-len(s):], s) {
			return nil
		}
	}
	return fmt.Errorf("%w: %s", ErrHostNotAllowed, host)
}

// IsLoopback reports whether host is "localhost" or a loopback address,
// where plain http keeps a token on the machine.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}
