package deploy

import "context"

// HostGate is what the engine tells a deployment to a Hoster's target about
// the other deployments it runs to the same host. The engine puts it in the
// context of every call it makes for a worker (HostGateOf); it is absent
// (nil) elsewhere, and a deployer must work without it.
//
// It lets a deployer that batches work per host (one config test and reload
// for every resource of a job on a host) wait for all of them instead of
// for whichever happened to hold one of the host's session slots
// (--per-host bounds sessions at once, not the size of a batch).
// Implementations are safe for concurrent use.
type HostGate interface {
	// Others is how many other deployments on this node are still on their
	// way to the same host: waiting for a session slot, holding one, or
	// claimed and not yet placed on a host. A batch that waits for them is
	// bounded by the deployer's own timers.
	Others() int
	// Yield gives back this deployment's session slot while it waits, using
	// no session, for the batch it joined; another deployment to the host
	// may then start. Only the first call has an effect.
	Yield()
}

type hostGateKey struct{}

// WithHostGate returns ctx carrying g.
func WithHostGate(ctx context.Context, g HostGate) context.Context {
	return context.WithValue(ctx, hostGateKey{}, g)
}

// HostGateOf returns the HostGate in ctx, or nil.
func HostGateOf(ctx context.Context) HostGate {
	g, _ := ctx.Value(hostGateKey{}).(HostGate)
	return g
}
