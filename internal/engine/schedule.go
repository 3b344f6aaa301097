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

	if t, ok, err := e.store.JobNextDue(ctx); err == nil && ok && t.Before(next) {
		next = t
	}
	if t := e.claim(ctx, now, 1); !t.IsZero() && t.Before(next) {
		next = t
	}
	return next
}

// freedPass is the loop's pass after workers ended (and nothing else woke
// it): it ends the jobs they belonged to and claims more work, but only
// once a batch of slots is free, so that a busy engine claims many workers
// per transaction instead of one for each that ends. It returns when to
// look again, or the zero time to keep the time the last full pass set.
func (e *Engine) freedPass(ctx context.Context) time.Time {
	e.finishJobs(ctx)
	// A wave that ended here bakes: look again when its bake ends.
	return earliest(e.claim(ctx, e.cfg.Clock.Now(), e.claimBatch()), e.takeBakeWake())
}

// claimBatch is how many slots must be free before a freed pass claims: a
// quarter of Workers. At most that many slots stay empty while the engine
// is busy, and each claim leases that many workers at least.
func (e *Engine) claimBatch() int { return max(1, e.cfg.Workers/4) }

// claim leases due workers into the free slots, if at least minFree are
// free, and starts them. It returns when due workers are next worth looking
// for, or the zero time if a finishing worker will wake the loop first (the
// slots are full, or fewer than minFree are free).
func (e *Engine) claim(ctx context.Context, now time.Time, minFree int) time.Time {
	e.mu.Lock()
	free := min(e.cfg.Workers-e.running, waitingPerWorker*e.cfg.Workers-e.running-e.waiting, (1+committingPerWorker)*e.cfg.Workers-e.running-e.committing)
	e.mu.Unlock()
	if free < minFree { // minFree ≥ 1
		return time.Time{}
	}
	ws, err := e.store.WorkerClaimDue(ctx, store.WorkerClaimDueParams{Owner: e.cfg.Owner, Now: now,
		LeaseUntil: now.Add(e.cfg.Lease), Limit: free})
	if err != nil {
		if ctx.Err() == nil && !errors.Is(err, store.ErrConflict) {
			e.log.Error("engine: claim workers", "error", err)
		}
		return now.Add(time.Second)
	}
	if len(ws) > 0 {
		rd := e.readClaim(ctx, ws)
		if ctx.Err() != nil {
			return time.Time{} // shutting down: Run hands the leases back
		}
		for _, w := range ws {
			e.start(ctx, w, rd)
		}
	}
	if len(ws) == free {
		return time.Time{} // saturated: a finishing worker wakes us
	}
	t, ok, err := e.store.WorkerNextDue(ctx)
	if err != nil || !ok {
		return time.Time{}
	}
	// Everything claimable was claimed above, so a due time in the past
	// belongs to a worker waiting for its resource to be released; the
	// release wakes us, so only look again after a short pause.
	return later(t, now.Add(blockedRecheck))
}

// committingPerWorker·Workers bounds the outcomes waiting for their group
// commit (worker.go, slot): while one commit waits for its flush the next
// batch gathers, and a larger bound lets it grow to more than one slot's
// worth per worker.
const committingPerWorker = 2

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
		// A job with workers deploying here has not ended, nor has its
		// wave: the last of them to end marks it again. (A rollback
		// running here does not hold back a job's end or its next wave.)
		if e.deploying[id] == 0 {
			ids = append(ids, id)
		}
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
