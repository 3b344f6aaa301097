package storetest

import (
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// testJobControl: cancelling, retrying and rolling back a whole job.
func testJobControl(t *testing.T, setup func(t *testing.T) *bundle) {
	t.Run("CancelPending", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, ws := b.simpleJob(t, 2)
		b.schedule(t, j.ID, b.now.Add(time.Hour))
		ok(t, b.s.JobCancel(b.ctx, store.JobCancelParams{AccountID: b.acct, JobID: j.ID, Now: b.now}), "JobCancel")
		got := b.getJob(t, j.ID)
		equal(t, "job Status", got.Status, store.JobError)
		sameMS(t, "job Cancelled", got.Cancelled, b.now)
		sameMS(t, "job EndTime", got.EndTime, b.now)
		for _, w := range ws {
			w = b.worker(t, w.ID)
			equal(t, "worker Status", w.Status, store.WorkerError)
			equal(t, "worker LastError", w.LastError, store.CancelledMessage)
		}
		ids, err := b.s.JobStartDue(b.ctx, b.now.Add(2*time.Hour))
		ok(t, err, "JobStartDue")
		equal(t, "started after cancel", len(ids), 0)
		isErr(t, b.s.JobCancel(b.ctx, store.JobCancelParams{AccountID: b.acct, JobID: j.ID, Now: b.now}), store.ErrConflict, "JobCancel again")
	})

	t.Run("CancelProcessing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, _ := b.simpleJob(t, 3)
		b.start(t, j.ID)
		ws := b.claim(t, "a", b.now, 2)
		equal(t, "claimed", len(ws), 2)
		running, retrying := ws[0], ws[1]
		// One claimed worker fails transiently: it waits for its retry, not running.
		ok(t, b.s.WorkerFinish(b.ctx, store.WorkerFinishParams{ID: retrying.ID, LeaseToken: retrying.LeaseToken, Status: store.WorkerProcessing,
			LastError: "503", Attempts: 1, NextRunAt: b.now, Now: b.now}), "WorkerFinish(retry)")
		ok(t, b.s.JobCancel(b.ctx, store.JobCancelParams{AccountID: b.acct, JobID: j.ID, Now: b.now}), "JobCancel")
		equal(t, "job Status while a worker runs", b.getJob(t, j.ID).Status, store.JobProcessing)
		equal(t, "retrying worker Status", b.worker(t, retrying.ID).Status, store.WorkerError)
		equal(t, "retrying worker LastError", b.worker(t, retrying.ID).LastError, "cancelled (last attempt: 503)")
		equal(t, "running worker Status", b.worker(t, running.ID).Status, store.WorkerProcessing)
		equal(t, "claimable after cancel", len(b.claim(t, "b", b.now.Add(time.Hour), 10)), 0)
		if _, has, err := b.s.WorkerNextDue(b.ctx); err != nil || has {
			t.Errorf("WorkerNextDue after cancel: has = %v, err = %v; want nothing due", has, err)
		}
		// The running worker's transient failure is not retried: it ends error.
		ok(t, b.s.WorkerFinish(b.ctx, store.WorkerFinishParams{ID: running.ID, LeaseToken: running.LeaseToken, Status: store.WorkerProcessing,
			LastError: "timeout", Attempts: 1, NextRunAt: b.now, Now: b.now}), "WorkerFinish(retry of running)")
		w := b.worker(t, running.ID)
		equal(t, "running worker Status after its retry", w.Status, store.WorkerError)
		equal(t, "running worker LastError", w.LastError, "cancelled (last attempt: timeout)")
		st, err := b.s.JobFinishIfDone(b.ctx, j.ID, b.now)
		ok(t, err, "JobFinishIfDone")
		equal(t, "job outcome", st, store.JobError)
		isErr(t, b.s.JobCancel(b.ctx, store.JobCancelParams{AccountID: b.acct, JobID: j.ID, Now: b.now}), store.ErrConflict, "JobCancel(ended)")
	})

	t.Run("CancelRefused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, _ := b.simpleJob(t, 1)
		isErr(t, b.s.JobCancel(b.ctx, store.JobCancelParams{AccountID: b.acct, JobID: j.ID, Now: b.now}), store.ErrConflict, "JobCancel(editing)")
		isErr(t, b.s.JobCancel(b.ctx, store.JobCancelParams{AccountID: b.other, JobID: j.ID, Now: b.now}), store.ErrNotFound, "JobCancel(another account's)")
		equal(t, "editing job Status", b.getJob(t, j.ID).Status, store.JobEditing)
	})

	t.Run("Retry", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, ws := b.simpleJob(t, 2)
		equal(t, "first outcome", b.run(t, j.ID, store.WorkerError), store.JobError)
		n, err := b.s.JobRetry(b.ctx, store.JobRetryParams{AccountID: b.acct, JobID: j.ID, WorkerIDs: []int64{ws[0].ID}, Now: b.now})
		ok(t, err, "JobRetry(one worker)")
		equal(t, "moved", n, int64(1))
		got := b.getJob(t, j.ID)
		equal(t, "job Status", got.Status, store.JobProcessing)
		equal(t, "job EndTime cleared", got.EndTime.IsZero(), true)
		w := b.worker(t, ws[0].ID)
		equal(t, "retried Status", w.Status, store.WorkerScheduling)
		equal(t, "retried Attempts", w.Attempts, 0)
		equal(t, "retried LastError", w.LastError, "")
		equal(t, "other Status", b.worker(t, ws[1].ID).Status, store.WorkerError)
		c := b.claimOne(t, "a", b.now, ws[0].ID)
		b.finish(t, c, store.WorkerSuccess)
		// A running job's other error worker may be retried too.
		n, err = b.s.JobRetry(b.ctx, store.JobRetryParams{AccountID: b.acct, JobID: j.ID, Now: b.now})
		ok(t, err, "JobRetry(all)")
		equal(t, "moved", n, int64(1))
		b.finish(t, b.claimOne(t, "a", b.now, ws[1].ID), store.WorkerSuccess)
		st, err := b.s.JobFinishIfDone(b.ctx, j.ID, b.now)
		ok(t, err, "JobFinishIfDone")
		equal(t, "outcome after retry", st, store.JobSuccess)
		_, err = b.s.JobRetry(b.ctx, store.JobRetryParams{AccountID: b.acct, JobID: j.ID, Now: b.now})
		isErr(t, err, store.ErrConflict, "JobRetry(no error worker)")
		equal(t, "job Status after a refused retry", b.getJob(t, j.ID).Status, store.JobSuccess)
	})

	t.Run("RetryCancelled", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, ws := b.simpleJob(t, 1)
		b.start(t, j.ID)
		ok(t, b.s.JobCancel(b.ctx, store.JobCancelParams{AccountID: b.acct, JobID: j.ID, Now: b.now}), "JobCancel")
		equal(t, "cancelled job", b.getJob(t, j.ID).Status, store.JobError)
		_, err := b.s.JobRetry(b.ctx, store.JobRetryParams{AccountID: b.acct, JobID: j.ID, Now: b.now})
		ok(t, err, "JobRetry")
		equal(t, "Cancelled cleared", b.getJob(t, j.ID).Cancelled.IsZero(), true)
		b.claimOne(t, "a", b.now, ws[0].ID)
	})

	t.Run("RetryRefused", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, _ := b.simpleJob(t, 1)
		_, err := b.s.JobRetry(b.ctx, store.JobRetryParams{AccountID: b.acct, JobID: j.ID, Now: b.now})
		isErr(t, err, store.ErrConflict, "JobRetry(editing)")
		_, err = b.s.JobRetry(b.ctx, store.JobRetryParams{AccountID: b.other, JobID: j.ID, Now: b.now})
		isErr(t, err, store.ErrNotFound, "JobRetry(another account's)")
	})

	t.Run("Rollback", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, ws := b.simpleJob(t, 3)
		b.start(t, j.ID)
		claimed := b.claim(t, "a", b.now, 10)
		equal(t, "claimed", len(claimed), 3)
		// Worker 0 changed its resource, worker 1 found it in place, worker 2 failed.
		b.finish(t, claimed[0], store.WorkerSuccess)
		ok(t, b.s.WorkerFinish(b.ctx, store.WorkerFinishParams{ID: claimed[1].ID, LeaseToken: claimed[1].LeaseToken, Status: store.WorkerSuccess,
			Attempts: 1, Now: b.now, Previous: &store.WorkerRecordPreviousParams{Unchanged: true}}), "WorkerFinish(unchanged)")
		b.finish(t, claimed[2], store.WorkerError)
		n, err := b.s.JobRollback(b.ctx, store.JobRollbackParams{AccountID: b.acct, JobID: j.ID, Now: b.now})
		ok(t, err, "JobRollback")
		equal(t, "moved", n, int64(1))
		equal(t, "changed worker", b.worker(t, claimed[0].ID).Status, store.WorkerRollback)
		equal(t, "unchanged worker", b.worker(t, claimed[1].ID).Status, store.WorkerSuccess)
		equal(t, "failed worker", b.worker(t, claimed[2].ID).Status, store.WorkerError)
		_, err = b.s.JobRollback(b.ctx, store.JobRollbackParams{AccountID: b.acct, JobID: j.ID, Now: b.now})
		isErr(t, err, store.ErrConflict, "JobRollback(nothing left)")
		_, err = b.s.JobRollback(b.ctx, store.JobRollbackParams{AccountID: b.other, JobID: j.ID, Now: b.now})
		isErr(t, err, store.ErrNotFound, "JobRollback(another account's)")
		_ = ws
	})

	t.Run("WorkerFinishMany", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, _ := b.simpleJob(t, 3)
		b.start(t, j.ID)
		claimed := b.claim(t, "a", b.now, 10)
		equal(t, "claimed", len(claimed), 3)
		stale := claimed[2]
		stale.LeaseToken++ // a holder whose lease was taken over
		errs, err := b.s.WorkerFinishMany(b.ctx, []store.WorkerFinishParams{
			{ID: claimed[0].ID, LeaseToken: claimed[0].LeaseToken, Status: store.WorkerSuccess, Attempts: 1, Now: b.now,
				ResourceID: claimed[0].ResourceID, SetResourceCert: true, ResourceCertID: claimed[0].CertID},
			{ID: claimed[1].ID, LeaseToken: claimed[1].LeaseToken, Status: store.WorkerError, LastError: "refused", Attempts: 1, Now: b.now},
			{ID: stale.ID, LeaseToken: stale.LeaseToken, Status: store.WorkerSuccess, Attempts: 1, Now: b.now},
		})
		ok(t, err, "WorkerFinishMany")
		equal(t, "errs", len(errs), 3)
		ok(t, errs[0], "outcome 0")
		ok(t, errs[1], "outcome 1")
		isErr(t, errs[2], store.ErrConflict, "outcome with a stale lease")
		equal(t, "worker 0", b.worker(t, claimed[0].ID).Status, store.WorkerSuccess)
		equal(t, "worker 1", b.worker(t, claimed[1].ID).Status, store.WorkerError)
		equal(t, "worker 2 (stale outcome not written)", b.worker(t, claimed[2].ID).Status, claimed[2].Status)
		errs, err = b.s.WorkerFinishMany(b.ctx, []store.WorkerFinishParams{{ID: claimed[0].ID, LeaseToken: claimed[0].LeaseToken,
			Status: store.WorkerSuccess, Attempts: 1, Now: b.now}})
		ok(t, err, "WorkerFinishMany(again)")
		isErr(t, errs[0], store.ErrConflict, "a second outcome on the same lease")
	})

	// Each kind of write an outcome carries, for several outcomes in one
	// batch: the previous state, the resource's certificate, the job's
	// rollback mark, and a retry of a cancelled job's worker ending it.
	t.Run("WorkerFinishManyWrites", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, _ := b.simpleJob(t, 3)
		b.start(t, j.ID)
		cancelled, _ := b.simpleJob(t, 1)
		b.start(t, cancelled.ID)
		claimed := b.claim(t, "a", b.now, 10)
		equal(t, "claimed", len(claimed), 4)
		var ws []store.Worker
		var retry store.Worker
		for _, w := range claimed {
			if w.JobID == cancelled.ID {
				retry = w
			} else {
				ws = append(ws, w)
			}
		}
		ok(t, b.s.JobCancel(b.ctx, store.JobCancelParams{AccountID: b.acct, JobID: cancelled.ID, Now: b.now}), "JobCancel")
		var ps []store.WorkerFinishParams
		for i, w := range ws {
			ps = append(ps, store.WorkerFinishParams{ID: w.ID, LeaseToken: w.LeaseToken, Status: store.WorkerSuccess, Attempts: 1,
				Now: b.now, ResourceID: w.ResourceID, SetResourceCert: true, ResourceCertID: w.CertID,
				Previous: &store.WorkerRecordPreviousParams{ResourceCertID: int64(100 + i), PreviousEnc: []byte{0, byte(i), 0xff}, Unchanged: i == 1}})
		}
		ps[2].MarkJobRollback = true
		ps = append(ps, store.WorkerFinishParams{ID: retry.ID, LeaseToken: retry.LeaseToken, Status: store.WorkerProcessing,
			LastError: "timeout", Attempts: 1, NextRunAt: b.now.Add(time.Minute), Now: b.now})
		errs, err := b.s.WorkerFinishMany(b.ctx, ps)
		ok(t, err, "WorkerFinishMany")
		for i, e := range errs {
			ok(t, e, "outcome %d", i)
		}
		for i, w := range ws {
			got := b.worker(t, w.ID)
			equal(t, "Status", got.Status, store.WorkerSuccess)
			equal(t, "HasPrevious", got.HasPrevious, true)
			equal(t, "ResourceCertID", got.ResourceCertID, int64(100+i))
			equal(t, "PreviousEnc", got.PreviousEnc, []byte{0, byte(i), 0xff})
			equal(t, "Unchanged", got.Unchanged, i == 1)
			res, err := b.s.ResourceGet(b.ctx, b.acct, w.ResourceID)
			ok(t, err, "ResourceGet")
			equal(t, "resource's CurrentCertID", res.CurrentCertID, w.CertID)
		}
		equal(t, "job Rollback", b.getJob(t, j.ID).Rollback, true)
		equal(t, "cancelled job Rollback", b.getJob(t, cancelled.ID).Rollback, false)
		got := b.worker(t, retry.ID)
		equal(t, "retried worker of a cancelled job", got.Status, store.WorkerError)
		equal(t, "its LastError", got.LastError, store.CancelledMessage+" (last attempt: timeout)")
	})
}
