package engine

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/certfleet/certfleet/internal/rollout"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/verify"
)

// RunProber probes every resource with a VerifyAddress, of every account, at
// once and then every interval, recording what each serves, until ctx ends.
// Several nodes may each run it; they only repeat each other's probes.
func (e *Engine) RunProber(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := e.cfg.Clock.NewTimer(interval)
	defer t.Stop()
	for {
		e.probeAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			t.Reset(interval)
		}
	}
}

// proberParallel bounds the probes one round runs at once.
const proberParallel = 8

func (e *Engine) probeAll(ctx context.Context) {
	sem := make(chan struct{}, proberParallel)
	var wg sync.WaitGroup
	defer wg.Wait()
	var after int64
	for ctx.Err() == nil {
		rs, err := e.store.ResourceScan(ctx, store.ResourceScanParams{AfterID: after, ConfigContains: verify.KeyAddress, Limit: 500})
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("prober: list resources", "error", err)
			}
			return
		}
		for _, r := range rs {
			after = r.ID
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				if _, _, err := rollout.Observe(ctx, e.store, e.cfg.Egress, r); err != nil && !errors.Is(err, rollout.ErrNoVerifyAddress) && ctx.Err() == nil {
					e.log.Warn("prober: observe resource", "resource_id", r.ID, "error", err)
				}
			}()
		}
		if len(rs) < 500 {
			return
		}
	}
}
