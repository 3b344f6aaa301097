package store

import (
	"context"
	"time"
)

// WaveStore is the part of Store that runs staged rollouts. A job with a
// Strategy has its workers numbered by wave (Worker.Wave, assigned when the
// job is written); WorkerClaimDue leases only workers whose wave is at most
// the job's CurrentWave (or that are rolling back). The engine reads a job's
// wave with JobWaveGet and then either advances it or halts the job; both
// are conditional on the wave it read, so two nodes never act twice.
//
// The rules (when a wave is done, how many failures halt a job) belong to
// the engine; the store only counts and writes.
type WaveStore interface {
	// JobWaveGet returns the wave state of a job (any account). For a job
	// without a Strategy the worker counts (Running, Finished, Failed,
	// LastFinished) are not read and are zero.
	JobWaveGet(ctx context.Context, jobID int64) (JobWave, error)
	// JobWaveBake records until when the job's wave From bakes (for
	// JobBakeDue); ErrConflict unless the job is processing in wave From.
	JobWaveBake(ctx context.Context, jobID int64, from int, until time.Time) error
	// JobWaveAdvance moves a processing job from wave From to From+1 and
	// clears its bake; ErrConflict if it is not processing in wave From.
	JobWaveAdvance(ctx context.Context, p JobWaveAdvanceParams) error
	// JobWaveHalt halts a processing job in wave Wave, in one transaction:
	// its workers of later waves that have not run become error with
	// Message, and with Rollback its successful workers move to rollback
	// (as WorkerRequestRollback). ErrConflict if the job is not processing
	// in wave Wave or was halted already.
	JobWaveHalt(ctx context.Context, p JobWaveHaltParams) error
	// JobBakeDue returns the processing jobs whose bake ended by now, and
	// the earliest bake end after now (ok=false if none).
	JobBakeDue(ctx context.Context, now time.Time) (due []int64, next time.Time, ok bool, err error)
}

// JobWave is a staged job's progress.
type JobWave struct {
	JobID       int64
	Status      JobStatus
	Strategy    string // "" = not staged
	CurrentWave int
	LastWave    int
	HaltedWave  int
	BakeUntil   time.Time // zero = not baking
	// Counts over the workers of waves 0…CurrentWave: Running have still
	// to run (scheduling, processing), Finished have run (any other
	// status), Failed of them ended error.
	Running, Finished, Failed int64
	// LastFinished is the latest change of a finished worker of those waves.
	LastFinished time.Time
}

// JobWaveAdvanceParams is the argument of JobWaveAdvance.
type JobWaveAdvanceParams struct {
	JobID int64
	From  int
	Now   time.Time
}

// JobWaveHaltParams is the argument of JobWaveHalt.
type JobWaveHaltParams struct {
	JobID int64
	// Wave is the job's current wave (0-based); it is recorded 1-based as
	// the job's HaltedWave.
	Wave     int
	Message  string // ErrorMessage of the workers that never ran
	Rollback bool   // move the job's successful workers to rollback
	Now      time.Time
}

// JobEventKindHalt is the JobEvent (and NotificationEmit) kind of a halted
// staged rollout: told once, guarded by the job's halt_notified flag.
const JobEventKindHalt = "halt"
