package tokenmgr

import (
	"time"

	"github.com/tokenmgr/tokenmgr/damp"
)

// Rejection damping is internal/damp's Hosts, one rule for this
// transport and awscreds' SDK middleware: from the second token a host
// rejects in a row (one obtained after its last rejection), its
// rejections go to the caller without a refresh for a cooldown, whether
// or not the request could be replayed.

// rejected notes that host rejected e and reports whether the rejection
// must be passed on without a refresh (see damp.Hosts.Rejected), and for
// how long.
func (r *sendRules[T]) rejected(c credential[T], host string, e *entry[T]) (damped bool, d time.Duration) {
	return r.damp.Reject(damp.Rejection{
		Host: host, Token: e.id, Obtained: e.obtained,
		Replacement: e.replaced && c.inService(e),
	}, c.clock())
}
