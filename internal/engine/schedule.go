package engine

import (
	"context"
	"errors"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// tick does everything due now and returns when to look again.
func (e *Engine) tick(ctx context.Context) time.Time {
	now := e.cfg.Clock.Now()
	next := now.Add(e.cfg.IdlePoll)
	retrySoon := now.Add(time.Second)

	started, err := e.store.JobStartDue(ctx, now)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("engine: start due jobs", "error", err)
		}
		return retrySoon
	}
	for _, id := range started {
		e.log.Info("job started", "job_id", id)
		e.markFinishing(id)
	}
	bake := e.wavesDue(ctx, now) // staged jobs whose bake ended are finishing too
	e.finishJobs(ctx)
	if bake = earliest(bake, e.takeBakeWake()); !bake.IsZero() && bake.Before(next) {
		next = bake
	}

	e.mu.Lock()
	free := min(e.cfg.Workers-e.running, waitingPerWorker*e.cfg.Workers-e.running-e.waiting)
	e.mu.Unlock()
	if free > 0 {
		ws, err := e.store.WorkerClaimDue(ctx, store.WorkerClaimDueParams{Owner: e.cfg.Owner, Now: now,
			LeaseUntil: now.Add(e.cfg.Lease), Limit: free})
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, store.ErrConflict) {
				e.log.Error("engine: claim workers", "error", err)
			}
			return retrySoon
		}
		for _, w := range ws {
			e.start(ctx, w)
		}
		if len(ws) == free {
			// Saturated: a finishing worker wakes us.
			return next
		}
	}
	if t, ok, err := e.store.JobNextDue(ctx); err == nil && ok && t.Before(next) {
		next = t
	}
	if t, ok, err := e.store.WorkerNextDue(ctx); err == nil && ok {
		// Everything claimable was claimed above, so a due time in the past
		// belongs to a worker waiting for its resource to be released; the
		// release wakes us, so only look again after a short pause.
		if t = later(t, now.Add(blockedRecheck)); t.Before(next) {
			next = t
		}
	}
	return next
}

// blockedRecheck is the pause before looking again at due workers that
// could not be claimed because another worker holds their resource.
const blockedRecheck = 250 * time.Millisecond

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (e *Engine) markFinishing(jobID int64) {
	e.mu.Lock()
	e.finishing[jobID] = true
	e.mu.Unlock()
}

// finishJobs ends the jobs whose workers are all final.
func (e *Engine) finishJobs(ctx context.Context) {
	e.mu.Lock()
	ids := make([]int64, 0, len(e.finishing))
	for id := range e.finishing {
		ids = append(ids, id)
	}
	clear(e.finishing)
	e.mu.Unlock()
	for _, id := range ids {
		e.waveStep(ctx, id)
		status, err := e.store.JobFinishIfDone(ctx, id, e.cfg.Clock.Now())
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			e.markFinishing(id)
			continue
		}
		if e.jobChanged != nil {
			e.jobChanged(id)
		}
		if status == store.JobSuccess || status == store.JobError {
			e.log.Info("job finished", "job_id", id, "status", status)
			e.sweepLater(ctx, id)
		}
	}
}
