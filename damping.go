package tokenmgr

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
// every token (a wrong audience, the wrong environment): refreshing on its
// rejections only costs a token request per call. So each host's
// rejections are tracked on their own, and from the second token a host
// rejects in a row its rejections are passed to the caller without a
// refresh for a cooldown (1s doubling to 30s). Any answer from the host
// that is not a rejection ends it. One misconfigured host never stops the
// recovery of a revoked token on the others.

// maxDampedHosts bounds the hosts tracked at once.
const maxDampedHosts = 256

type damper struct {
	mu    sync.Mutex
	hosts map[string]*hostRejections
	n     atomic.Int32 // len(hosts), read without the lock on every answer
}

// hostRejections is what one host has rejected.
type hostRejections struct {
	last *entry    // the last token the host rejected
	at   time.Time // when it first rejected it
	cool *cooldown
}

// hostKey names a request's destination: host and port, lower-case.
func hostKey(u *url.URL) string { return strings.ToLower(u.Hostname()) + ":" + port(u) }

// damped reports whether host's rejections are passed on without a
// refresh at now.
func (d *damper) damped(host string, now time.Time) bool {
	if d.n.Load() == 0 {
		return false
	}
	d.mu.Lock()
	h := d.hosts[host]
	d.mu.Unlock()
	return h != nil && h.cool.active(now)
}

// rejected notes that host rejected e and reports whether the rejection
// must be passed on without a refresh: e was obtained after host rejected
// another token, with no accepted request between. It then (re)starts
// host's cooldown, whose length it returns. The late rejection of a token
// older than the last one rejected (a request that was in flight) says
// nothing new.
func (c *Client) rejected(host string, e *entry) (damp bool, d time.Duration) {
	dm := &c.damp
	dm.mu.Lock()
	defer dm.mu.Unlock()
	h := dm.hosts[host]
	if h == nil {
		if dm.hosts == nil {
			dm.hosts = map[string]*hostRejections{}
		}
		if len(dm.hosts) >= maxDampedHosts {
			dm.evict(c.now())
		}
		h = &hostRejections{cool: newCooldown(time.Second, 30*time.Second)}
		dm.hosts[host] = h
		dm.n.Store(int32(len(dm.hosts)))
	}
	now := c.now()
	switch {
	case h.last == nil:
		h.last, h.at = e, now
		return false, 0
	case h.last == e || h.last.tok.AccessToken == e.tok.AccessToken, e.obtained.Before(h.at):
		return false, 0
	}
	h.last, h.at = e, now
	return true, h.cool.fail(now, nil, 0)
}

// accepted forgets what u's host rejected: it took a token. It costs an
// atomic load while no host is tracked.
func (d *damper) accepted(u *url.URL) {
	if d.n.Load() == 0 {
		return
	}
	host := hostKey(u)
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.hosts[host]; ok {
		delete(d.hosts, host)
		d.n.Store(int32(len(d.hosts)))
	}
}

// evict makes room: hosts whose cooldown is over go first, then any.
func (d *damper) evict(now time.Time) {
	for k, h := range d.hosts {
		if !h.cool.active(now) {
			delete(d.hosts, k)
		}
	}
	for k := range d.hosts {
		if len(d.hosts) < maxDampedHosts {
			break
		}
		delete(d.hosts, k)
	}
	d.n.Store(int32(len(d.hosts)))
}
