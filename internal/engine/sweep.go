package engine

import (
	"context"
	"time"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/rollout"
	"github.com/certfleet/certfleet/internal/store"
)

// sweepTimeout bounds one product's cleanup after a job.
const sweepTimeout = 5 * time.Minute

// sweepLater starts, in the background, the cleanup of what a finished job's
// products uploaded and no binding uses any more (deploy.Sweeper). Sweeps
// are idempotent: a job seen finished again (a rollback later, another
// node) sweeps again and finds less to delete. Failures are logged and
// never change the job.
func (e *Engine) sweepLater(ctx context.Context, jobID int64) {
	if !e.anySweeper() {
		return
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.sweep(ctx, jobID)
	}()
}

// anySweeper reports whether a product of the catalog cleans up after jobs.
func (e *Engine) anySweeper() bool {
	for _, d := range e.products.Products() {
		if p, ok := e.products.Lookup(d.CloudName, d.CloudProduct); ok {
			if _, ok := p.(deploy.Sweeper); ok {
				return true
			}
		}
	}
	return false
}

func (e *Engine) sweep(ctx context.Context, jobID int64) {
	targets, err := e.store.JobSweepTargets(ctx, jobID)
	if err != nil {
		e.log.Warn("cleanup after job: listing its products failed", "job_id", jobID, "error", err)
		return
	}
	for _, st := range targets {
		p, ok := e.products.Lookup(st.CloudName, st.CloudProduct)
		if !ok {
			continue
		}
		sw, ok := p.(deploy.Sweeper)
		if !ok {
			continue
		}
		log := e.log.With("job_id", jobID, "product", st.CloudName+"/"+st.CloudProduct, "access_id", st.CloudAccessID)
		if err := e.sweepOne(ctx, sw, st); err != nil {
			log.Warn("cleanup after job failed", "error", err)
			continue
		}
		log.Info("cleanup after job done")
	}
}

func (e *Engine) sweepOne(ctx context.Context, sw deploy.Sweeper, st store.SweepTarget) error {
	res, err := e.store.ResourceGet(ctx, st.AccountID, st.ResourceID)
	if err != nil {
		return err
	}
	t, _, err := rollout.TargetOf(ctx, e.store, e.box, res)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithTimeout(ctx, sweepTimeout)
	defer cancel()
	return sw.Sweep(sctx, t)
}
