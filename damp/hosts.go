// Package damp holds off repeated work after failures: [Cooldown], the
// backoff behind tokenmgr's failure backoff, and [Hosts], the per-host
// rejection damping that tokenmgr's transport and awscreds' SDK
// middleware share, so that both follow one rule: a host that rejects
// even fresh credentials costs two credential fetches, then one per
// cooldown, and never holds back the other hosts. It is public because
// awscreds is a module of its own; its API follows those two users.
package damp

import (
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Rejection damping.
//
// A host that rejects even a token fetched after its last rejection rejects
// every token (a wrong audience, the wrong environment, an AWS opt-in
// region that is not enabled): refreshing on its rejections only costs a
// token request per call. So each host's rejections are tracked on their
// own, and from the second token a host rejects in a row its rejections are
// passed to the caller without a refresh for a cooldown (1s doubling to
// 30s). Any answer from the host that is not a rejection ends it. One
// misconfigured host never stops the recovery of a revoked token on the
// others.
//
// Whether the caller replays the request (a body that can be rewound) or
// not (one that cannot) does not matter: the rejection is noted first, so
// a host that rejects every token costs two token requests, then one per
// cooldown, whatever the bodies.
//
// Hosts that reject every token can be many (a client fanned out over
// thousands of tenants' hosts), and each one's first rejection would cost
// a token request and swap out the token the others use; past MaxHosts
// the eviction would forget damped hosts, which then cost one again. So a
// host's first rejection of a replacement (a token fetched because a host
// rejected the one before, still in service), or the same token's again
// after the host's cooldown, is refreshed only when a cooldown shared by
// all hosts (1s doubling to 30s) is not running; within it the host is
// damped at once. First rejections start it; the host whose rejection it
// let through taking a newer token (a revocation, mended) ends it. The
// token requests rejections cost per window are then bounded whatever the
// number of hosts, and revoked tokens on a healthy host are still replaced
// at once however often.

// MaxHosts bounds the hosts tracked at once.
const MaxHosts = 256

// Hosts tracks the rejections of each host. The zero value is ready for
// use; it is safe for concurrent use.
type Hosts struct {
	mu    sync.Mutex
	hosts map[string]*hostRejections
	n     atomic.Int32 // len(hosts), read without the lock on every answer
	// shared is the cooldown shared by all hosts for rejections of
	// replacements; nil until the first.
	shared *Cooldown
	// pending is the last replacement shared let through, until its host
	// takes a newer token.
	pending atomic.Pointer[pass]
}

// pass is a replacement let through to be replaced in turn: host rejected
// token at at.
type pass struct {
	host, token string
	at          time.Time
}

// Rejection is a token a host rejected, for [Hosts.Reject].
type Rejection struct {
	Host     string    // the host's [HostKey]
	Token    string    // the token (compared, never kept past the next one)
	Obtained time.Time // when the token was obtained
	// Replacement: the token was fetched because a host rejected the one
	// before, and is still in service, so that replacing it costs a token
	// request.
	Replacement bool
}

// hostRejections is what one host has rejected.
type hostRejections struct {
	last string    // the last token the host rejected
	at   time.Time // when it first rejected it
	cool *Cooldown
}

// HostKey names a request's destination: host and port, lower-case.
func HostKey(u *url.URL) string { return strings.ToLower(u.Hostname()) + ":" + Port(u) }

// Port returns u's port, or the default port of its scheme.
func Port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if strings.EqualFold(u.Scheme, "http") {
		return "80"
	}
	return "443"
}

// Damped reports whether host's rejections are passed on without a
// refresh at now.
func (d *Hosts) Damped(host string, now time.Time) bool {
	if d.n.Load() == 0 {
		return false
	}
	d.mu.Lock()
	h := d.hosts[host]
	d.mu.Unlock()
	return h != nil && h.cool.Active(now)
}

// Rejected notes that host rejected token, obtained at obtained, and
// reports whether the rejection must be passed on without a refresh: the
// token was obtained after host rejected another token, with no accepted
// request between. It then (re)starts host's cooldown, whose length it
// returns. The late rejection of a token older than the last one rejected
// (a request that was in flight) says nothing new.
func (d *Hosts) Rejected(host, token string, obtained, now time.Time) (damp bool, cool time.Duration) {
	return d.Reject(Rejection{Host: host, Token: token, Obtained: obtained}, now)
}

// Reject is [Hosts.Rejected] for a rejection that may be of a
// replacement, which the cooldown shared by all hosts bounds (see the
// package's comments).
func (d *Hosts) Reject(r Rejection, now time.Time) (damp bool, cool time.Duration) {
	host, token, obtained := r.Host, r.Token, r.Obtained
	d.mu.Lock()
	defer d.mu.Unlock()
	h := d.hosts[host]
	if h == nil {
		if d.hosts == nil {
			d.hosts = map[string]*hostRejections{}
		}
		if len(d.hosts) >= MaxHosts {
			d.evict(now)
		}
		h = &hostRejections{cool: NewCooldown(time.Second, 30*time.Second)}
		d.hosts[host] = h
		d.n.Store(int32(len(d.hosts)))
	}
	switch {
	case h.at.IsZero() || h.last == token:
		// A first rejection, or the same token's again after the host's
		// cooldown: refreshed, unless it is a replacement's while the
		// shared cooldown runs, which only first rejections start.
		first := h.at.IsZero()
		if first {
			h.last, h.at = token, now
		}
		if p := d.pending.Load(); !r.Replacement || (p != nil && p.token == token) {
			// Not a replacement, or one being replaced already: the
			// caller takes its replacement at no new cost.
			return false, 0
		}
		if d.shared == nil {
			d.shared = NewCooldown(time.Second, 30*time.Second)
		}
		if d.shared.Active(now) {
			return true, h.cool.Fail(now, nil, 0)
		}
		if first {
			d.shared.Fail(now, nil, 0)
		}
		d.pending.Store(&pass{host: host, token: token, at: now})
		return false, 0
	case obtained.Before(h.at):
		return false, 0
	}
	h.last, h.at = token, now
	return true, h.cool.Fail(now, nil, 0)
}

// Accepted forgets what u's host rejected: it took a token. It costs an
// atomic load while no host is tracked.
func (d *Hosts) Accepted(u *url.URL) {
	if d.n.Load() == 0 {
		return
	}
	d.Forget(HostKey(u))
}

// AcceptedToken is [Hosts.Accepted] for the caller of [Hosts.Reject]: u's
// host took token, obtained at obtained. It costs two atomic loads while
// no host is tracked and no replacement is pending. The host of the
// pending replacement taking a newer token says its rejection was the
// token's (a revocation, mended), not the host's: the shared cooldown
// starts over.
func (d *Hosts) AcceptedToken(u *url.URL, token string, obtained time.Time) {
	if d.n.Load() == 0 && d.pending.Load() == nil {
		return
	}
	host := HostKey(u)
	if p := d.pending.Load(); p != nil && p.host == host && p.token != token && !obtained.Before(p.at) {
		d.mu.Lock()
		if d.pending.CompareAndSwap(p, nil) {
			d.shared.Reset()
		}
		d.mu.Unlock()
	}
	d.Forget(host)
}

// Forget forgets what host (a [HostKey]) rejected.
func (d *Hosts) Forget(host string) {
	if d.n.Load() == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.hosts[host]; ok {
		delete(d.hosts, host)
		d.n.Store(int32(len(d.hosts)))
	}
}

// Len returns how many hosts are tracked.
func (d *Hosts) Len() int { return int(d.n.Load()) }

// evict makes room: hosts whose cooldown is over go first, then any.
func (d *Hosts) evict(now time.Time) {
	for k, h := range d.hosts {
		if !h.cool.Active(now) {
			delete(d.hosts, k)
		}
	}
	for k := range d.hosts {
		if len(d.hosts) < MaxHosts {
			break
		}
		delete(d.hosts, k)
	}
	d.n.Store(int32(len(d.hosts)))
}
