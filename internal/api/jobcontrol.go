package api

import (
	"context"
	"errors"

	"github.com/certfleet/certfleet/internal/store"
)

// Certfleet's own job-wide operations (not in CAS 2020-04-07): cancel,
// retry and roll back a whole job. Each is one conditional store write;
// docs/architecture.md ("Cancel, retry, roll back a job") has the rules.

// cancelDeploymentJob stops a pending, scheduling or processing job: its
// workers that are not running end error "cancelled", running ones finish,
// and the job ends (error if any worker was stopped or failed) with
// Cancelled = 1.
func (a *API) cancelDeploymentJob(ctx context.Context, c *call) (any, error) {
	j, err := a.getJob(ctx, c)
	if err != nil {
		return nil, err
	}
	err = a.store.JobCancel(ctx, store.JobCancelParams{AccountID: c.accountID, JobID: j.ID, Now: a.opts.Clock()})
	if errors.Is(err, store.ErrConflict) {
		cur, _ := a.store.JobGet(ctx, c.accountID, j.ID)
		if !cur.Cancelled.IsZero() {
			return nil, errStatus("Job %d was cancelled already (it is %s).", j.ID, cur.Status)
		}
		return nil, errStatus("Job %d is %s; only a pending, scheduling or processing job can be cancelled.", j.ID, cur.Status)
	}
	if err != nil {
		return nil, err
	}
	// The job may have ended: the engine checks it and wakes the dispatcher.
	if w, ok := a.engine.(interface{ WakeJob(jobID int64) }); ok {
		w.WakeJob(j.ID)
	} else {
		a.engine.Wake()
	}
	cur, err := a.store.JobGet(ctx, c.accountID, j.ID)
	if err != nil {
		return nil, err
	}
	return struct {
		JobId  int64
		Status string
	}{j.ID, string(cur.Status)}, nil
}

// retryDeploymentJob runs a job's error workers again (those of WorkerIds,
// when given): they go back to scheduling with their attempts reset, the
// job back to processing. From a finished job, or a processing one.
func (a *API) retryDeploymentJob(ctx context.Context, c *call) (any, error) {
	j, err := a.getJob(ctx, c)
	if err != nil {
		return nil, err
	}
	var ids []int64
	if c.params.has("WorkerIds") {
		if ids, err = c.params.ids("WorkerIds", true); err != nil {
			return nil, err
		}
	}
	n, err := a.store.JobRetry(ctx, store.JobRetryParams{AccountID: c.accountID, JobID: j.ID, WorkerIDs: ids, Now: a.opts.Clock()})
	if errors.Is(err, store.ErrConflict) {
		cur, _ := a.store.JobGet(ctx, c.accountID, j.ID)
		switch cur.Status {
		case store.JobSuccess, store.JobError, store.JobProcessing:
			if len(ids) > 0 {
				return nil, errStatus("Job %d has no error worker among WorkerIds that is not running; only error workers are retried.", j.ID)
			}
			return nil, errStatus("Job %d has no error worker to retry.", j.ID)
		}
		return nil, errStatus("Job %d is %s; only a success, error or processing job can be retried.", j.ID, cur.Status)
	}
	if err != nil {
		return nil, err
	}
	a.engine.Wake()
	return struct {
		JobId       int64
		WorkerCount int64
	}{j.ID, n}, nil
}

// rollbackDeploymentJob rolls back every worker of a job that changed its
// resource: success workers that did not find their certificate already in
// place. One transaction, so the rollbacks end as one batch and are told
// to the contacts once.
func (a *API) rollbackDeploymentJob(ctx context.Context, c *call) (any, error) {
	j, err := a.getJob(ctx, c)
	if err != nil {
		return nil, err
	}
	n, err := a.store.JobRollback(ctx, store.JobRollbackParams{AccountID: c.accountID, JobID: j.ID, Now: a.opts.Clock()})
	if errors.Is(err, store.ErrConflict) {
		return nil, errStatus("Job %d has no success worker that changed its resource; nothing to roll back.", j.ID)
	}
	if err != nil {
		return nil, err
	}
	a.engine.Wake()
	return struct {
		JobId       int64
		WorkerCount int64
	}{j.ID, n}, nil
}
