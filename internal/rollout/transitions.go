package rollout

import (
	"fmt"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// WorkerEvent is something that happens to a worker and may change its
// status.
type WorkerEvent string

// The events of a worker's life, in the order they usually come.
const (
	// WorkerSubmitted: its job left editing for pending or scheduling.
	WorkerSubmitted WorkerEvent = "submitted"
	// WorkerEdited: its job went back to editing before it started.
	WorkerEdited WorkerEvent = "edited"
	// WorkerStarted: its job started processing.
	WorkerStarted WorkerEvent = "started"
	// WorkerClaimed: a node leased it to run it.
	WorkerClaimed WorkerEvent = "claimed"
	// WorkerSucceeded: its deployment (or rollback) succeeded.
	WorkerSucceeded WorkerEvent = "succeeded"
	// WorkerRetried: a transient failure with attempts left; it runs again later.
	WorkerRetried WorkerEvent = "retried"
	// WorkerFailed: a permanent failure, or the attempts ran out.
	WorkerFailed WorkerEvent = "failed"
	// WorkerHalted: its wave never ran because an earlier wave halted the job.
	WorkerHalted WorkerEvent = "halted"
	// WorkerRollbackRequested: a user (UpdateWorkerResourceStatus) or a
	// halted rollout (RollbackOnHalt) asked to undo it.
	WorkerRollbackRequested WorkerEvent = "rollback requested"
	// WorkerCancelled: its job was cancelled (CancelDeploymentJob) while it
	// had not run or waited for a retry; it ends error "cancelled". A
	// running worker is not cancelled: it finishes, and a retry of it ends
	// error instead (the store's WorkerFinish).
	WorkerCancelled WorkerEvent = "cancelled"
	// WorkerRetryRequested: a user ran a failed worker again (RetryDeploymentJob).
	WorkerRetryRequested WorkerEvent = "retry requested"
)

// workerTransitions is every status change of a worker: from → event → to.
// A pair that is absent is not allowed. The store's conditional writes
// (internal/store/sqlstore) enforce the same table in SQL; keep them in step.
var workerTransitions = map[store.WorkerStatus]map[WorkerEvent]store.WorkerStatus{
	store.WorkerEditing: {
		WorkerSubmitted: store.WorkerPending,
		WorkerHalted:    store.WorkerError,
	},
	store.WorkerPending: {
		WorkerEdited:    store.WorkerEditing,
		WorkerStarted:   store.WorkerScheduling,
		WorkerHalted:    store.WorkerError,
		WorkerCancelled: store.WorkerError,
	},
	store.WorkerScheduling: {
		WorkerEdited:    store.WorkerEditing,
		WorkerClaimed:   store.WorkerProcessing,
		WorkerSucceeded: store.WorkerSuccess,
		WorkerRetried:   store.WorkerProcessing,
		WorkerFailed:    store.WorkerError,
		WorkerHalted:    store.WorkerError,
		WorkerCancelled: store.WorkerError,
	},
	store.WorkerProcessing: {
		WorkerClaimed:   store.WorkerProcessing,
		WorkerSucceeded: store.WorkerSuccess,
		WorkerRetried:   store.WorkerProcessing,
		WorkerFailed:    store.WorkerError,
		WorkerHalted:    store.WorkerError, // only one that has not run yet
		WorkerCancelled: store.WorkerError, // only one waiting for a retry
	},
	store.WorkerSuccess: {
		WorkerRollbackRequested: store.WorkerRollback,
	},
	store.WorkerError: {
		WorkerRollbackRequested: store.WorkerRollback,
		WorkerRetryRequested:    store.WorkerScheduling,
	},
	store.WorkerRollback: {
		WorkerClaimed:   store.WorkerRollback,
		WorkerSucceeded: store.WorkerRollbackSuccess,
		WorkerRetried:   store.WorkerRollback,
		WorkerFailed:    store.WorkerRollbackError,
	},
	store.WorkerRollbackSuccess: {},
	store.WorkerRollbackError:   {},
}

// WorkerNext is the status a worker in status from moves to on ev; ok is
// false when ev cannot happen to a worker in that status.
func WorkerNext(from store.WorkerStatus, ev WorkerEvent) (to store.WorkerStatus, ok bool) {
	to, ok = workerTransitions[from][ev]
	return to, ok
}

// workerStatuses is every worker status, in the order of a worker's life.
var workerStatuses = []store.WorkerStatus{store.WorkerEditing, store.WorkerPending, store.WorkerScheduling, store.WorkerProcessing,
	store.WorkerSuccess, store.WorkerError, store.WorkerRollback, store.WorkerRollbackSuccess, store.WorkerRollbackError}

// WorkerFrom lists, in the order of a worker's life, the statuses in which
// ev may happen to a worker (for messages that say what is allowed).
func WorkerFrom(ev WorkerEvent) []string {
	var from []string
	for _, s := range workerStatuses {
		if _, ok := workerTransitions[s][ev]; ok {
			from = append(from, string(s))
		}
	}
	return from
}

// jobMoves is which status a user may move a job to, from which
// (UpdateDeploymentJobStatus); every other job change is the engine's.
var jobMoves = map[store.JobStatus][]store.JobStatus{
	store.JobPending:    {store.JobEditing},
	store.JobScheduling: {store.JobEditing, store.JobPending},
	store.JobEditing:    {store.JobPending, store.JobScheduling},
}

// StatusError is a status change that is not allowed.
type StatusError struct {
	To      string
	Allowed []string // the statuses one may ask for instead
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%q is not one of %s", e.To, strings.Join(e.Allowed, ", "))
}

// JobMove is the store change a user's request to move job j to status to
// makes at now: from which statuses, and the ScheduleTime (pending keeps a
// future one, else now; scheduling means now). A status a user cannot ask
// for gives a *StatusError.
func JobMove(j store.Job, to store.JobStatus, now time.Time) (store.JobSetStatusParams, error) {
	from, ok := jobMoves[to]
	if !ok {
		return store.JobSetStatusParams{}, &StatusError{To: string(to), Allowed: []string{string(store.JobPending), string(store.JobScheduling), string(store.JobEditing)}}
	}
	p := store.JobSetStatusParams{AccountID: j.AccountID, JobID: j.ID, From: from, To: to, Now: now}
	switch to {
	case store.JobPending:
		if j.ScheduleTime.IsZero() || j.ScheduleTime.Before(now) {
			p.ScheduleTime = now
		}
	case store.JobScheduling:
		p.ScheduleTime = now
	}
	return p, nil
}
