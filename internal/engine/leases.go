package engine

import (
	"context"
	"maps"

	"github.com/certfleet/certfleet/internal/store"
)

// Leases are renewed together: every Lease/3 one statement
// (store.WorkerExtendLeases) renews the lease of every worker running on
// this node, instead of each running worker renewing its own. Fencing is
// unchanged: a renewal is conditional on the worker's lease token, and a
// worker whose lease is not renewed has lost it (another node took it over
// after it lapsed, or it was handed back), so its run is cancelled as soon
// as this is known, before it writes anything: its outcome would be refused
// anyway.

// heldLease is a running worker's lease as the renewer sees it.
type heldLease struct {
	token  int64
	clock  *leaseClock
	cancel context.CancelCauseFunc
}

// hold registers a running worker's lease for renewal until release.
func (e *Engine) hold(id int64, l heldLease) (release func()) {
	e.mu.Lock()
	e.leases[id] = l
	e.mu.Unlock()
	return func() {
		e.mu.Lock()
		delete(e.leases, id)
		e.mu.Unlock()
	}
}

// renewLeases renews the held leases every Lease/3 until ctx ends.
func (e *Engine) renewLeases(ctx context.Context) {
	t := e.cfg.Clock.NewTimer(e.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		t.Reset(e.cfg.Lease / 3)
		e.mu.Lock()
		held := maps.Clone(e.leases)
		e.mu.Unlock()
		if len(held) == 0 {
			continue
		}
		leases := make([]store.Lease, 0, len(held))
		for id, l := range held {
			leases = append(leases, store.Lease{ID: id, Token: l.token})
		}
		until := e.cfg.Clock.Now().Add(e.cfg.Lease)
		rctx, cancel := context.WithTimeout(ctx, e.cfg.Lease/3)
		renewed, err := e.store.WorkerExtendLeases(rctx, leases, until)
		cancel()
		if err != nil {
			// Not renewed, not lost: each run's lease clock stops a
			// deployment that would start past the lease, and the next
			// renewal tries again.
			if ctx.Err() == nil {
				e.log.Warn("engine: renew leases", "leases", len(leases), "error", err)
			}
			continue
		}
		for id, l := range held {
			if renewed[id] {
				l.clock.renewed(until)
			} else {
				l.cancel(errLeaseLost)
			}
		}
	}
}
