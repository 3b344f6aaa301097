package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/certfleet/certfleet/internal/rollout"
	"github.com/certfleet/certfleet/internal/store"
)

// wavesDue marks the jobs whose bake ended as finishing (so that
// finishJobs moves them on) and returns when the next bake ends (zero if
// none): the engine wakes then, without polling.
func (e *Engine) wavesDue(ctx context.Context, now time.Time) time.Time {
	due, next, ok, err := e.store.JobBakeDue(ctx, now)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Warn("engine: jobs done baking", "error", err)
		}
		return now.Add(time.Second)
	}
	for _, id := range due {
		e.markFinishing(id)
	}
	if !ok {
		return time.Time{}
	}
	return next
}

// waveStep moves a staged job on once every worker of its current wave has
// run and the wave has baked: it halts the job when more than
// MaxFailPercent of the workers that ran so far failed, else it lets the
// next wave run. Jobs without a Strategy, or in their last wave, are left
// to JobFinishIfDone. It reports whether workers became claimable.
func (e *Engine) waveStep(ctx context.Context, jobID int64) (advanced bool) {
	w, err := e.store.JobWaveGet(ctx, jobID)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && ctx.Err() == nil {
			e.log.Warn("engine: read job wave", "job_id", jobID, "error", err)
			e.markFinishing(jobID)
		}
		return false
	}
	if w.Strategy == "" || w.Status != store.JobProcessing || w.HaltedWave != 0 || w.CurrentWave >= w.LastWave || w.Running > 0 {
		return false
	}
	s, err := rollout.ParseStrategy(w.Strategy)
	if err != nil {
		// Stored strategies were validated; a bad one runs like a plain job.
		e.log.Error("engine: job strategy unreadable; running the remaining waves", "job_id", jobID, "error", err)
		s = rollout.Strategy{MaxFailPercent: 100}
	}
	now := time.Now()
	log := e.log.With("job_id", jobID, "wave", w.CurrentWave+1)
	if until := s.BakeUntil(w.LastFinished); s.BakeSeconds > 0 && now.Before(until) {
		if !w.BakeUntil.Equal(until) {
			if err := e.store.JobWaveBake(ctx, jobID, w.CurrentWave, until); err == nil {
				log.Info("wave done; baking", "until", until.Format(time.RFC3339Nano))
			}
		}
		e.noteBake(until)
		return false
	}
	if s.Halts(w.Failed, w.Finished) {
		msg := fmt.Sprintf("not started: wave %d halted the rollout (%d of %d finished workers failed, above MaxFailPercent %s%%)",
			w.CurrentWave+1, w.Failed, w.Finished, fmtPercent(s.MaxFailPercent))
		err := e.store.JobWaveHalt(ctx, store.JobWaveHaltParams{JobID: jobID, Wave: w.CurrentWave, Message: msg,
			Rollback: s.RollbackOnHalt, Now: now})
		if err == nil {
			log.Warn("rollout halted", "failed", w.Failed, "finished", w.Finished, "rollback", s.RollbackOnHalt)
			return s.RollbackOnHalt
		}
		if !errors.Is(err, store.ErrConflict) {
			log.Warn("engine: halt rollout", "error", err)
			e.markFinishing(jobID)
		}
		return false
	}
	err = e.store.JobWaveAdvance(ctx, store.JobWaveAdvanceParams{JobID: jobID, From: w.CurrentWave, Now: now})
	if err == nil {
		log.Info("wave done; next wave starts", "failed", w.Failed, "finished", w.Finished)
		return true
	}
	if !errors.Is(err, store.ErrConflict) {
		log.Warn("engine: advance wave", "error", err)
		e.markFinishing(jobID)
	}
	return false
}

func fmtPercent(v float64) string { return fmt.Sprintf("%g", v) }

// noteBake remembers a bake end for the current tick's wake-up.
func (e *Engine) noteBake(t time.Time) {
	e.mu.Lock()
	e.bakeWake = earliest(e.bakeWake, t)
	e.mu.Unlock()
}

func (e *Engine) takeBakeWake() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.bakeWake
	e.bakeWake = time.Time{}
	return t
}

// earliest is the earlier of two times, a zero time meaning none.
func earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}
