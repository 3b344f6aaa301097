// Package store defines the persistence contract of certfleet: the records it
// keeps and the operations on them, independent of the database engine.
//
// It is not an ORM and holds no business rules beyond the conditional writes
// that keep state changes safe (a stale lease holder can never overwrite a
// newer state). Engines live in sub-packages (sqlite, postgres) and share one
// implementation in sqlstore; storetest is the conformance suite both pass.
//
// Errors: methods return ErrNotFound when a row does not exist in the caller's
// account, ErrConflict when a uniqueness rule or a conditional write fails.
// API error codes are chosen at the API edge, never here.
package store

import (
	"context"
	"errors"
	"strconv"
	"time"
)

// Sentinel errors returned (possibly wrapped) by every Store implementation.
var (
	ErrNotFound = errors.New("store: not found")
	ErrConflict = errors.New("store: conflict")
	// ErrInUse is returned by deletes of rows an unfinished job references.
	ErrInUse = errors.New("store: in use")
	// ErrClaimed is returned (wrapped, with the claim) by ResourceCreate and
	// ResourceUpdate when another resource, of any account, holds one of
	// Resource.Claims.
	ErrClaimed = errors.New("store: claimed by another resource")
)

// Store is the whole persistence contract. Implementations are safe for
// concurrent use. Every method honours ctx cancellation.
type Store interface {
	Ping(ctx context.Context) error
	Close() error

	AccountEnsure(ctx context.Context, name string) (int64, error)
	AccessKeyUpsert(ctx context.Context, k AccessKey) error
	AccessKeyGet(ctx context.Context, id string) (AccessKey, error)
	// NonceUse records a signature nonce; ErrConflict if it was seen before.
	NonceUse(ctx context.Context, nonce string, expires time.Time) error
	// NonceUseMany records many nonces at once (the API's group commit of
	// concurrent calls' nonces) and returns a verdict for each: NonceFresh
	// (recorded now), NonceUsed (seen before, or repeated earlier in ns) or
	// NonceBeforeEpoch (refused: signed before the store's epoch, so it may
	// have been used and lost in a crash). A fresh nonce is refused on every
	// node sharing the database from the moment NonceUseMany returns, but
	// need not be durable yet: each engine keeps a durable epoch so that a
	// nonce lost in a crash is refused as NonceBeforeEpoch
	// (docs/decisions.md, issue 14).
	NonceUseMany(ctx context.Context, ns []NonceParams) ([]NonceVerdict, error)
	NoncePurge(ctx context.Context, before time.Time) (int64, error)

	CertificateCreate(ctx context.Context, c *Certificate) error
	CertificateGet(ctx context.Context, accountID, id int64) (Certificate, error)
	CertificateList(ctx context.Context, p CertificateListParams) ([]Certificate, int64, error)
	CertificateDelete(ctx context.Context, accountID, id int64) error

	AccessCreate(ctx context.Context, a *CloudAccess) error
	AccessGet(ctx context.Context, accountID, id int64) (CloudAccess, error)
	AccessList(ctx context.Context, p AccessListParams) ([]CloudAccess, int64, error)
	AccessDelete(ctx context.Context, accountID, id int64) error

	ResourceCreate(ctx context.Context, r *Resource) error
	ResourceGet(ctx context.Context, accountID, id int64) (Resource, error)
	ResourceGetMany(ctx context.Context, accountID int64, ids []int64) ([]Resource, error)
	ResourceUpdate(ctx context.Context, r *Resource) error
	ResourceList(ctx context.Context, p ResourceListParams) ([]Resource, int64, error)
	ResourceDelete(ctx context.Context, accountID, id int64) error
	ResourceCountByProduct(ctx context.Context, accountID int64) ([]ProductCount, error)
	// ResourceSync reconciles, in one transaction, what a sync of one
	// product of one credential found with the resources earlier syncs of
	// that pair created: a new DiscoveryKey creates a resource (named
	// Found[i].Name, or its key), a known one updates the sync-owned fields
	// and the Config keys Found carries (keys added by hand stay), and a
	// resource of the pair no longer found turns ResourceGone. Resources
	// created by hand are never touched. Running it twice with the same
	// Found changes nothing the second time.
	ResourceSync(ctx context.Context, p ResourceSyncParams) (SyncCounts, error)
	// CertificateFindBySha2 returns the account's newest certificate whose
	// leaf has this SHA-256 (upper-case hex), or ErrNotFound.
	CertificateFindBySha2(ctx context.Context, accountID int64, sha2 string) (Certificate, error)
	// AccessScan pages through every account's cloud accesses by ID.
	AccessScan(ctx context.Context, afterID int64, limit int) ([]CloudAccess, error)
	// JobSweepTargets lists the products and credentials a job's workers
	// deployed to (resources with a credential only), one row per pair.
	JobSweepTargets(ctx context.Context, jobID int64) ([]SweepTarget, error)
	// ResourceScan pages through every account's resources by ID (for the prober).
	ResourceScan(ctx context.Context, p ResourceScanParams) ([]Resource, error)

	// ResourceObservationPut records a resource's latest observation, replacing the previous one.
	ResourceObservationPut(ctx context.Context, o ResourceObservation) error
	// ResourceObservationGetMany returns the latest observations of the
	// account's resources among ids (resources never probed are absent).
	ResourceObservationGetMany(ctx context.Context, accountID int64, ids []int64) ([]ResourceObservation, error)
	// ResourceObservationCountByProduct counts, per product, the account's
	// stale and expiring resources by their latest observation.
	ResourceObservationCountByProduct(ctx context.Context, p ObservationCountParams) ([]ObservationCount, error)

	ContactCreate(ctx context.Context, c *Contact) error
	ContactGet(ctx context.Context, accountID, id int64) (Contact, error)
	ContactGetMany(ctx context.Context, accountID int64, ids []int64) ([]Contact, error)
	ContactUpdate(ctx context.Context, c *Contact) error
	ContactList(ctx context.Context, p ContactListParams) ([]Contact, int64, error)
	ContactDelete(ctx context.Context, accountID, id int64) error

	// JobCreate inserts the job and its workers (status editing) in one
	// transaction, taking the workers from workers chunk by chunk; an error
	// of workers leaves no job.
	JobCreate(ctx context.Context, j *Job, workers WorkerChunks) error
	// JobReplace rewrites an editing job's fields and workers (chunk by
	// chunk, in one transaction); ErrConflict unless editing.
	JobReplace(ctx context.Context, j *Job, workers WorkerChunks) error
	JobGet(ctx context.Context, accountID, id int64) (Job, error)
	JobList(ctx context.Context, p JobListParams) ([]Job, int64, error)
	JobDelete(ctx context.Context, accountID, id int64) error
	// JobSetStatus moves a job (and its not-yet-run workers) from one of the
	// from statuses to to; ErrConflict if the job is in none of them.
	JobSetStatus(ctx context.Context, p JobSetStatusParams) error
	// JobNextDue returns the earliest ScheduleTime of pending jobs, ok=false if none.
	JobNextDue(ctx context.Context) (t time.Time, ok bool, err error)
	// JobStartDue moves due pending jobs to processing and their workers to
	// scheduling; returns the IDs moved.
	JobStartDue(ctx context.Context, now time.Time) ([]int64, error)
	// JobFinishIfDone ends a processing job whose workers are all final.
	JobFinishIfDone(ctx context.Context, jobID int64, now time.Time) (status JobStatus, err error)
	JobStatusCounts(ctx context.Context, accountID, jobID int64) (JobCounts, error)
	// JobCancel stops a pending, scheduling or processing job in one
	// transaction: its workers not running now (not started, or waiting for
	// a retry) end error with CancelledMessage, the job is marked Cancelled,
	// and a job that had not started ends error at once (a processing one
	// ends through JobFinishIfDone when its running workers finish). From
	// then on WorkerClaimDue never leases its workers except rollbacks, and
	// WorkerFinish turns a running worker's retry into error. ErrConflict if
	// the job is in another status or cancelled already.
	JobCancel(ctx context.Context, p JobCancelParams) error
	// JobRetry moves a job's error workers (those of WorkerIDs, when given)
	// that are not running back to scheduling, due now with attempts reset,
	// and the job to processing (clearing its end, its Cancelled mark, a
	// halt — the retried workers all run at once — and its notified flag, so
	// its new end is told). Only a success, error or processing job;
	// ErrConflict otherwise or if no worker matched. Returns how many moved.
	JobRetry(ctx context.Context, p JobRetryParams) (int64, error)
	// JobRollback moves every success worker of a started job that changed
	// its resource (not Unchanged) to rollback, as WorkerRequestRollback
	// does for one. ErrConflict if the job has not started or no worker
	// matched. Returns how many moved.
	JobRollback(ctx context.Context, p JobRollbackParams) (int64, error)
	JobUnfinishedIDs(ctx context.Context) ([]int64, error)

	WorkerList(ctx context.Context, p WorkerListParams) ([]Worker, int64, error)
	WorkerGet(ctx context.Context, accountID, id int64) (Worker, error)
	// WorkerPage is WorkerList for one page (Limit > 0), as the API lists
	// workers: the same workers and total, found by seeking by ID instead
	// of skipping Offset rows when the matching workers' IDs are
	// consecutive (a job's workers are, unless some were deleted), so a
	// deep page costs what the first one does.
	WorkerPage(ctx context.Context, p WorkerListParams) ([]Worker, int64, error)
	// WorkerListAfter pages a job's workers by keyset (ID above AfterID),
	// for readers that walk a whole job in bounded memory.
	WorkerListAfter(ctx context.Context, p WorkerListAfterParams) ([]Worker, error)
	WorkerDelete(ctx context.Context, accountID, jobID, id int64) error
	// WorkerRequestRollback moves a success/error worker to rollback.
	WorkerRequestRollback(ctx context.Context, accountID, jobID, id int64, now time.Time) error
	// WorkerClaimDue leases up to Limit due workers to Owner.
	WorkerClaimDue(ctx context.Context, p WorkerClaimDueParams) ([]Worker, error)
	// WorkerExtendLease renews a lease; ErrConflict if the token is stale.
	WorkerExtendLease(ctx context.Context, id, token int64, until time.Time) error
	// WorkerExtendLeases renews many leases in one statement; the IDs it
	// returns were renewed, and any other was lost (as ErrConflict above).
	WorkerExtendLeases(ctx context.Context, leases []Lease, until time.Time) (renewed map[int64]bool, err error)
	// WorkerRecordPrevious stores what the resource served before the deploy.
	WorkerRecordPrevious(ctx context.Context, p WorkerRecordPreviousParams) error
	// WorkerFinish writes a worker's outcome, conditional on its lease token.
	WorkerFinish(ctx context.Context, p WorkerFinishParams) error
	// WorkerFinishMany writes many workers' outcomes in one transaction (the
	// engine's group commit). errs[i] is ErrConflict for an outcome whose
	// lease was lost (it writes nothing; the others are written); any other
	// failure is err, and then nothing at all is written.
	WorkerFinishMany(ctx context.Context, ps []WorkerFinishParams) (errs []error, err error)
	// WorkerNextDue returns the earliest next_run_at of claimable workers.
	WorkerNextDue(ctx context.Context) (t time.Time, ok bool, err error)
	// WorkerReleaseOwner gives back every lease held by owner (graceful stop).
	WorkerReleaseOwner(ctx context.Context, owner string) error

	WaveStore    // waves.go: staged rollouts
	RAMStore     // ram.go: RAM users, groups, policies, their access keys
	AuditStore   // ram.go: the hash-chained audit trail
	NotifyStore  // notifications.go: messages to contacts and the events they tell
	ClusterStore // cluster.go: leadership lease and wake-ups between nodes
	ACMEStore    // acme.go: issuers, ACME orders, CSRs (issue 20)
	MetricsStore // cluster.go: counts read at metrics scrape time
	ConsoleStore // console.go: login profiles and console sessions
}

// NonceMemory is a store that can answer some nonces at once, from
// memory, with nothing to wait for (SQLite's nonces, answered from memory
// and written behind). NonceUseNow records n as NonceUseMany would and
// returns its verdict, or ok false, having changed nothing, when n must go
// through NonceUseMany.
type NonceMemory interface {
	NonceUseNow(n NonceParams) (v NonceVerdict, ok bool)
}

// NonceParams is one nonce to record and when it may be forgotten.
type NonceParams struct {
	Nonce   string
	Expires time.Time
	// Signed is the signing time the request claims (covered by its
	// signature, so a replay carries the same one). Zero: unknown; the
	// nonce is then recorded durably before NonceUseMany returns and never
	// refused as NonceBeforeEpoch.
	Signed time.Time
}

// NonceVerdict is what NonceUseMany found for one nonce.
type NonceVerdict uint8

const (
	NonceFresh       NonceVerdict = iota // new: recorded now
	NonceUsed                            // seen before: a replay
	NonceBeforeEpoch                     // signed before the epoch: refused, it may have been used and lost in a crash
)

func (v NonceVerdict) String() string {
	switch v {
	case NonceFresh:
		return "fresh"
	case NonceUsed:
		return "used"
	case NonceBeforeEpoch:
		return "before-epoch"
	}
	return "NonceVerdict(" + strconv.Itoa(int(v)) + ")"
}
