package engine

import (
	"context"
	"time"

	"github.com/certfleet/certfleet/internal/rollout"
	"github.com/certfleet/certfleet/internal/store"
)

// Store is what the engine needs of the store: scheduling jobs, leasing and
// finishing workers, running staged rollouts, reading what a deployment
// deploys and recording probes. A store.Store satisfies it.
type Store interface {
	store.WaveStore      // every method: waves.go
	rollout.ObserveStore // probes: rollout.Observe

	AccountGet(ctx context.Context, id int64) (store.Account, error) // the Scope of its targets
	AccessGet(ctx context.Context, accountID, id int64) (store.CloudAccess, error)
	ResourceGet(ctx context.Context, accountID, id int64) (store.Resource, error)
	ResourceGetMany(ctx context.Context, accountID int64, ids []int64) ([]store.Resource, error) // a claim's (claimreads.go)
	ResourceScan(ctx context.Context, p store.ResourceScanParams) ([]store.Resource, error)

	JobNextDue(ctx context.Context) (t time.Time, ok bool, err error)
	JobStartDue(ctx context.Context, now time.Time) ([]int64, error)
	JobFinishIfDone(ctx context.Context, jobID int64, now time.Time) (status store.JobStatus, err error)
	JobUnfinishedIDs(ctx context.Context) ([]int64, error)
	JobSweepTargets(ctx context.Context, jobID int64) ([]store.SweepTarget, error) // sweep.go

	WorkerClaimDue(ctx context.Context, p store.WorkerClaimDueParams) ([]store.Worker, error)
	WorkerExtendLeases(ctx context.Context, leases []store.Lease, until time.Time) (map[int64]bool, error) // leases.go
	WorkerRecordPrevious(ctx context.Context, p store.WorkerRecordPreviousParams) error
	WorkerFinishMany(ctx context.Context, ps []store.WorkerFinishParams) ([]error, error)
	WorkerNextDue(ctx context.Context) (t time.Time, ok bool, err error)
	WorkerReleaseOwner(ctx context.Context, owner string) error
}
