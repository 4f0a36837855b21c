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

// MaxHosts bounds the hosts tracked at once.
const MaxHosts = 256

// Hosts tracks the rejections of each host. The zero value is ready for
// use; it is safe for concurrent use.
type Hosts struct {
	mu    sync.Mutex
	hosts map[string]*hostRejections
	n     atomic.Int32 // len(hosts), read without the lock on every answer
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
	case h.at.IsZero():
		h.last, h.at = token, now
		return false, 0
	case h.last == token, obtained.Before(h.at):
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
