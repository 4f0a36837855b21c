package awscreds

import "context"

// The Observer's view of Configure's middleware: the root transport
// reports the rejections of Provider.Transport itself; the SDK's calls
// go through the middleware, which reports its own the same way.

// observePanic logs a panic in an Observer func. Its value is not logged:
// it is the caller's data, which may quote a secret.
func (p *Provider) observePanic(what string) {
	if recover() != nil {
		p.log.Error("Config.Observer panicked", "func", what)
	}
}

func (p *Provider) observeRejected(ctx context.Context, host, code string, replayed bool) {
	if p.obs == nil || p.obs.Rejected == nil {
		return
	}
	defer p.observePanic("Rejected")
	p.obs.Rejected(ctx, p.key, host, code, replayed)
}

func (p *Provider) observeHeldOff(ctx context.Context, host string) {
	if p.obs == nil || p.obs.HeldOff == nil {
		return
	}
	defer p.observePanic("HeldOff")
	p.obs.HeldOff(ctx, p.key, "damping", host)
}
