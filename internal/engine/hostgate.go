package engine

import (
	"context"

	"github.com/certfleet/certfleet/internal/deploy"
)

// Per-host limits. --per-host bounds the sessions open to one host at once;
// it does not bound a reload round: a deployment waiting in its host's
// round gives its slot back (deploy.HostGate.Yield), and the round waits for
// every deployment to that host this node is still running
// (deploy.HostGate.Others), so all resources of a job on one host are
// written, then tested and reloaded once.

// waitingPerWorker bounds the deployments waiting in reload rounds, which
// no longer count as running: at most waitingPerWorker·Workers (each keeps
// its lease renewed while it waits).
const waitingPerWorker = 16

// hostSlots is one host's session slots and how many deployments to it are
// under way and not yet yielded.
type hostSlots struct {
	sem  chan struct{}
	busy int // guarded by Engine.mu
}

// hostGate is one worker's deploy.HostGate: it holds (or waits for) a slot
// of its host until Yield or release.
type hostGate struct {
	e       *Engine
	h       *hostSlots
	holding bool // a slot was taken
	left    bool // yielded or released; guarded by Engine.mu
	yielded bool // counted in Engine.waiting, not running; guarded by Engine.mu
}

var _ deploy.HostGate = (*hostGate)(nil)

// Others counts the deployments to the host that have not yielded, besides
// this one, plus the workers not yet placed on a host (they may be bound for
// it).
func (g *hostGate) Others() int {
	g.e.mu.Lock()
	defer g.e.mu.Unlock()
	n := g.h.busy + g.e.unplaced
	if !g.left {
		n-- // this one
	}
	return max(n, 0)
}

// Yield gives back the slot, leaves the host's busy count, and stops
// counting as running (the engine may claim another worker in its place);
// only the first call, or release, has an effect.
func (g *hostGate) Yield() {
	if g.leave(true) {
		g.e.Wake()
	}
}

// release ends the gate: the slot is given back if Yield did not already,
// and a yielded deployment counts as running again until its run returns.
func (g *hostGate) release() {
	g.leave(false)
	g.e.mu.Lock()
	if g.yielded {
		g.yielded = false
		g.e.waiting--
		g.e.running++
	}
	g.e.mu.Unlock()
}

// leave gives back the slot once; it reports whether this call did.
func (g *hostGate) leave(yield bool) bool {
	g.e.mu.Lock()
	if g.left {
		g.e.mu.Unlock()
		return false
	}
	g.left = true
	g.h.busy--
	if yield {
		g.yielded = true
		g.e.running--
		g.e.waiting++
	}
	g.e.mu.Unlock()
	if g.holding {
		<-g.h.sem
	}
	return true
}

// acquireHost waits for a session slot of host. The gate it returns goes
// into the deployment's context; its release gives the slot back (if Yield
// did not already).
func (e *Engine) acquireHost(ctx context.Context, host string) (*hostGate, error) {
	e.mu.Lock()
	h, ok := e.hosts[host]
	if !ok {
		h = &hostSlots{sem: make(chan struct{}, e.cfg.PerHost)}
		e.hosts[host] = h
	}
	h.busy++
	e.mu.Unlock()
	g := &hostGate{e: e, h: h}
	select {
	case h.sem <- struct{}{}:
		g.holding = true
		return g, nil
	case <-ctx.Done():
		g.leave(false)
		return nil, ctx.Err()
	}
}
