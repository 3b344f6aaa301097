package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

func testWorkers(t *testing.T, setup func(t *testing.T) *bundle) {
	t.Run("ClaimLeases", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, ws := b.simpleJob(t, 3)
		b.simpleJob(t, 1) // stays editing: never claimable
		equal(t, "claimable before the job starts", len(b.claim(t, "a", b.now, 10)), 0)
		b.start(t, j.ID)

		until := b.now.Add(time.Minute)
		got, err := b.s.WorkerClaimDue(b.ctx, store.WorkerClaimDueParams{Owner: "a", Now: b.now, LeaseUntil: until, Limit: 2})
		ok(t, err, "WorkerClaimDue")
		if len(got) != 2 {
			t.Fatalf("WorkerClaimDue(limit 2) = %d workers, want 2", len(got))
		}
		before := map[int64]store.Worker{}
		for _, w := range ws {
			before[w.ID] = w
		}
		for _, w := range got {
			prev, found := before[w.ID]
			if !found {
				t.Fatalf("claimed worker %d is not of job %d", w.ID, j.ID)
			}
			equal(t, "claimed Status", w.Status, store.WorkerProcessing)
			equal(t, "claimed LeaseOwner", w.LeaseOwner, "a")
			equal(t, "claimed LeaseToken", w.LeaseToken, prev.LeaseToken+1)
			sameMS(t, "claimed LeaseExpires", w.LeaseExpires, until)
			equal(t, "claimed JobID", w.JobID, j.ID)
			equal(t, "claimed ResourceID", w.ResourceID, prev.ResourceID)
			stored := b.worker(t, w.ID)
			equal(t, "stored Status", stored.Status, store.WorkerProcessing)
			equal(t, "stored LeaseOwner", stored.LeaseOwner, "a")
			equal(t, "stored LeaseToken", stored.LeaseToken, w.LeaseToken)
			sameMS(t, "stored LeaseExpires", stored.LeaseExpires, until)
		}
		rest := b.claim(t, "b", b.now, 10)
		if len(rest) != 1 || rest[0].ID == got[0].ID || rest[0].ID == got[1].ID {
			t.Fatalf("second claim = %v, want the one remaining worker", idsOf(rest, workerID))
		}
		equal(t, "third claim", len(b.claim(t, "c", b.now, 10)), 0)
	})

	t.Run("OneWorkerPerResource", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			desc    string
			sameJob bool
		}{
			{desc: "two workers of one job on a resource", sameJob: true},
			{desc: "two jobs on a resource"},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				c := b.cert(t, b.acct, "c", nil)
				shared, solo := b.resource(t, b.acct, "shared", nil), b.resource(t, b.acct, "solo", nil)
				var onShared []int64
				if tc.sameJob {
					j, ws := b.job(t, b.acct, c.ID, shared, shared, solo)
					onShared = []int64{ws[0].ID, ws[1].ID}
					b.start(t, j.ID)
				} else {
					j1, ws1 := b.job(t, b.acct, c.ID, shared, solo)
					j2, ws2 := b.job(t, b.acct, c.ID, shared)
					onShared = []int64{ws1[0].ID, ws2[0].ID}
					b.start(t, j1.ID)
					b.start(t, j2.ID)
				}
				first := b.claim(t, "a", b.now, 10)
				if len(first) != 2 || first[0].ResourceID == first[1].ResourceID {
					t.Fatalf("first claim = %+v, want one worker on each resource", first)
				}
				var held store.Worker
				for _, w := range first {
					if w.ResourceID == shared.ID {
						held = w
					}
				}
				equal(t, "claim while the resource is held", idsOf(b.claim(t, "b", b.now, 10), workerID), []int64{})
				b.finish(t, held, store.WorkerSuccess)
				next := b.claim(t, "b", b.now, 10)
				if len(next) != 1 || next[0].ResourceID != shared.ID || next[0].ID == held.ID {
					t.Fatalf("claim after release = %+v, want the other worker on resource %d", next, shared.ID)
				}
				equal(t, "workers on the shared resource", sorted(held.ID, next[0].ID), sorted(onShared...))
			})
		}
	})

	t.Run("ExtendLease", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, w := b.workerIn(t, store.WorkerProcessing)
		later := b.now.Add(10 * time.Minute)
		ok(t, b.s.WorkerExtendLease(b.ctx, w.ID, w.LeaseToken, later), "WorkerExtendLease")
		sameMS(t, "LeaseExpires after extend", b.worker(t, w.ID).LeaseExpires, later)
		// The extended lease holds: not reclaimable past the original expiry.
		equal(t, "claim within the extended lease", len(b.claim(t, "thief", b.now.Add(5*time.Minute), 10)), 0)
		for _, stale := range []int64{w.LeaseToken - 1, w.LeaseToken + 1} {
			isErr(t, b.s.WorkerExtendLease(b.ctx, w.ID, stale, later.Add(time.Hour)), store.ErrConflict, "WorkerExtendLease(token %d)", stale)
		}
		sameMS(t, "LeaseExpires after refused extends", b.worker(t, w.ID).LeaseExpires, later)
		b.finish(t, w, store.WorkerSuccess)
		isErr(t, b.s.WorkerExtendLease(b.ctx, w.ID, w.LeaseToken, later), store.ErrConflict, "WorkerExtendLease after finish")
	})

	t.Run("ExtendLeases", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, _ := b.simpleJob(t, 3)
		b.start(t, j.ID)
		held := b.claim(t, "a", b.now, 10)
		equal(t, "claimed", len(held), 3)
		gone, stale, kept := held[0], held[1], held[2]
		b.finish(t, gone, store.WorkerSuccess)
		later := b.now.Add(10 * time.Minute)
		renewed, err := b.s.WorkerExtendLeases(b.ctx, []store.Lease{{ID: gone.ID, Token: gone.LeaseToken},
			{ID: stale.ID, Token: stale.LeaseToken + 1}, {ID: kept.ID, Token: kept.LeaseToken}}, later)
		ok(t, err, "WorkerExtendLeases")
		equal(t, "renewed", renewed, map[int64]bool{kept.ID: true})
		sameMS(t, "renewed LeaseExpires", b.worker(t, kept.ID).LeaseExpires, later)
		sameMS(t, "stale token's LeaseExpires", b.worker(t, stale.ID).LeaseExpires, stale.LeaseExpires)
		renewed, err = b.s.WorkerExtendLeases(b.ctx, nil, later)
		ok(t, err, "WorkerExtendLeases(none)")
		equal(t, "renewed of none", len(renewed), 0)
	})

	t.Run("LeaseExpiryFencing", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, ws := b.simpleJob(t, 1)
		b.start(t, j.ID)
		old := b.claimOne(t, "a", b.now, ws[0].ID) // lease until now+1m
		equal(t, "claim before expiry", len(b.claim(t, "b", b.now.Add(30*time.Second), 10)), 0)

		after := b.now.Add(2 * time.Minute)
		fresh := b.claimOne(t, "b", after, ws[0].ID)
		equal(t, "reclaimed LeaseOwner", fresh.LeaseOwner, "b")
		if fresh.LeaseToken <= old.LeaseToken {
			t.Fatalf("reclaimed LeaseToken %d, want above %d", fresh.LeaseToken, old.LeaseToken)
		}
		equal(t, "reclaimed Status", fresh.Status, store.WorkerProcessing)

		// The old holder is fenced off from every write.
		isErr(t, b.s.WorkerFinish(b.ctx, store.WorkerFinishParams{ID: old.ID, LeaseToken: old.LeaseToken, Status: store.WorkerError,
			LastError: "stale", Attempts: 1, Now: after}), store.ErrConflict, "WorkerFinish(stale token)")
		isErr(t, b.s.WorkerExtendLease(b.ctx, old.ID, old.LeaseToken, after.Add(time.Hour)), store.ErrConflict, "WorkerExtendLease(stale token)")
		isErr(t, b.s.WorkerRecordPrevious(b.ctx, store.WorkerRecordPreviousParams{ID: old.ID, LeaseToken: old.LeaseToken,
			ResourceCertID: 9, PreviousEnc: []byte("stale")}), store.ErrConflict, "WorkerRecordPrevious(stale token)")
		cur := b.worker(t, old.ID)
		equal(t, "Status after stale writes", cur.Status, store.WorkerProcessing)
		equal(t, "LeaseOwner after stale writes", cur.LeaseOwner, "b")
		equal(t, "HasPrevious after stale writes", cur.HasPrevious, false)

		ok(t, b.s.WorkerFinish(b.ctx, store.WorkerFinishParams{ID: fresh.ID, LeaseToken: fresh.LeaseToken, Status: store.WorkerSuccess,
			Attempts: 1, Now: after}), "WorkerFinish(current token)")
		equal(t, "Status after the new holder finished", b.worker(t, fresh.ID).Status, store.WorkerSuccess)
	})

	t.Run("FinishSetsResourceCert", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := b.cert(t, b.acct, "c", nil)
		r1, r2 := b.resource(t, b.acct, "r1", nil), b.resource(t, b.acct, "r2", nil)
		j, ws := b.job(t, b.acct, c.ID, r1, r2)
		b.start(t, j.ID)
		claimed := b.claim(t, "a", b.now, 10)
		equal(t, "claimed", idsOf(claimed, workerID), idsOf(ws, workerID))
		done := b.now.Add(time.Second)
		for _, w := range claimed {
			p := store.WorkerFinishParams{ID: w.ID, LeaseToken: w.LeaseToken, Status: store.WorkerSuccess, Attempts: 1, Now: done,
				SetResourceCert: w.ResourceID == r1.ID, ResourceID: w.ResourceID, ResourceCertID: c.ID}
			if w.ResourceID == r2.ID {
				p.Status, p.LastError = store.WorkerError, "listener gone"
			}
			ok(t, b.s.WorkerFinish(b.ctx, p), "WorkerFinish(%d)", w.ID)
		}
		got1, err := b.s.ResourceGet(b.ctx, b.acct, r1.ID)
		ok(t, err, "ResourceGet(r1)")
		equal(t, "r1 CurrentCertID", got1.CurrentCertID, c.ID)
		got2, err := b.s.ResourceGet(b.ctx, b.acct, r2.ID)
		ok(t, err, "ResourceGet(r2)")
		equal(t, "r2 CurrentCertID", got2.CurrentCertID, int64(0))
		for _, w := range b.workers(t, b.acct, j.ID) {
			want := store.WorkerSuccess
			if w.ResourceID == r2.ID {
				want = store.WorkerError
				equal(t, "LastError", w.LastError, "listener gone")
			}
			equal(t, "Status", w.Status, want)
			equal(t, "Attempts", w.Attempts, 1)
			equal(t, "LeaseOwner after finish", w.LeaseOwner, "")
			sameMS(t, "Modified", w.Modified, done)
		}
		got, err := b.s.JobFinishIfDone(b.ctx, j.ID, done)
		ok(t, err, "JobFinishIfDone")
		equal(t, "job outcome", got, store.JobError)
	})

	t.Run("Retry", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, w := b.workerIn(t, store.WorkerProcessing)
		retryAt := b.now.Add(5 * time.Minute)
		ok(t, b.s.WorkerFinish(b.ctx, store.WorkerFinishParams{ID: w.ID, LeaseToken: w.LeaseToken, Status: store.WorkerProcessing,
			LastError: "timeout", Attempts: 1, NextRunAt: retryAt, Now: b.now}), "WorkerFinish(retry)")
		got := b.worker(t, w.ID)
		equal(t, "Status", got.Status, store.WorkerProcessing)
		equal(t, "Attempts", got.Attempts, 1)
		equal(t, "LastError", got.LastError, "timeout")
		sameMS(t, "NextRunAt", got.NextRunAt, retryAt)
		next, has, err := b.s.WorkerNextDue(b.ctx)
		ok(t, err, "WorkerNextDue")
		if !has {
			t.Fatalf("WorkerNextDue: ok = false with a retry pending")
		}
		sameMS(t, "WorkerNextDue", next, retryAt)

		equal(t, "claim before NextRunAt", len(b.claim(t, "b", retryAt.Add(-time.Millisecond), 10)), 0)
		again := b.claimOne(t, "b", retryAt, w.ID)
		equal(t, "retried Attempts", again.Attempts, 1)
		equal(t, "retried Status", again.Status, store.WorkerProcessing)
		if again.LeaseToken <= w.LeaseToken {
			t.Errorf("retried LeaseToken %d, want above %d", again.LeaseToken, w.LeaseToken)
		}
		isErr(t, b.s.WorkerFinish(b.ctx, store.WorkerFinishParams{ID: w.ID, LeaseToken: w.LeaseToken, Status: store.WorkerSuccess,
			Attempts: 2, Now: retryAt}), store.ErrConflict, "WorkerFinish(first attempt's token)")
		ok(t, b.s.WorkerFinish(b.ctx, store.WorkerFinishParams{ID: w.ID, LeaseToken: again.LeaseToken, Status: store.WorkerSuccess,
			Attempts: 2, Now: retryAt}), "WorkerFinish(second attempt)")
		got = b.worker(t, w.ID)
		equal(t, "final Status", got.Status, store.WorkerSuccess)
		equal(t, "final Attempts", got.Attempts, 2)
	})

	t.Run("RecordPrevious", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, w := b.workerIn(t, store.WorkerProcessing)
		ok(t, b.s.WorkerRecordPrevious(b.ctx, store.WorkerRecordPreviousParams{ID: w.ID, LeaseToken: w.LeaseToken,
			ResourceCertID: 7, PreviousEnc: []byte("first")}), "WorkerRecordPrevious")
		check := func(what string) {
			t.Helper()
			got := b.worker(t, w.ID)
			equal(t, what+": HasPrevious", got.HasPrevious, true)
			equal(t, what+": ResourceCertID", got.ResourceCertID, int64(7))
			equal(t, what+": PreviousEnc", got.PreviousEnc, []byte("first"))
		}
		check("after record")
		ok(t, b.s.WorkerRecordPrevious(b.ctx, store.WorkerRecordPreviousParams{ID: w.ID, LeaseToken: w.LeaseToken,
			ResourceCertID: 8, PreviousEnc: []byte("second")}), "WorkerRecordPrevious again")
		check("after a second record")
		isErr(t, b.s.WorkerRecordPrevious(b.ctx, store.WorkerRecordPreviousParams{ID: w.ID, LeaseToken: w.LeaseToken + 1,
			ResourceCertID: 9, PreviousEnc: []byte("stale")}), store.ErrConflict, "WorkerRecordPrevious(wrong token)")
		check("after a wrong-token record")

		// A later attempt (new lease) keeps what the first one saw.
		ok(t, b.s.WorkerFinish(b.ctx, store.WorkerFinishParams{ID: w.ID, LeaseToken: w.LeaseToken, Status: store.WorkerProcessing,
			Attempts: 1, NextRunAt: b.now, Now: b.now}), "WorkerFinish(retry)")
		again := b.claimOne(t, "b", b.now, w.ID)
		ok(t, b.s.WorkerRecordPrevious(b.ctx, store.WorkerRecordPreviousParams{ID: w.ID, LeaseToken: again.LeaseToken,
			ResourceCertID: 10, PreviousEnc: []byte("retry")}), "WorkerRecordPrevious(second attempt)")
		check("after the second attempt's record")

		isErr(t, b.s.WorkerRecordPrevious(b.ctx, store.WorkerRecordPreviousParams{ID: w.ID + 1000, LeaseToken: 1}),
			store.ErrNotFound, "WorkerRecordPrevious(unknown worker)")
	})

	t.Run("RequestRollback", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			desc   string
			status store.WorkerStatus
			want   error
		}{
			{desc: "editing", status: store.WorkerEditing, want: store.ErrConflict},
			{desc: "pending", status: store.WorkerPending, want: store.ErrConflict},
			{desc: "scheduling", status: store.WorkerScheduling, want: store.ErrConflict},
			{desc: "processing", status: store.WorkerProcessing, want: store.ErrConflict},
			{desc: "success", status: store.WorkerSuccess},
			{desc: "error", status: store.WorkerError},
			{desc: "already rolling back", status: store.WorkerRollback, want: store.ErrConflict},
			{desc: "rolled back", status: store.WorkerRollbackSuccess, want: store.ErrConflict},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				j, w := b.workerIn(t, tc.status)
				isErr(t, b.s.WorkerRequestRollback(b.ctx, b.acct, j.ID, w.ID, b.now), tc.want, "WorkerRequestRollback")
				want := tc.status
				if tc.want == nil {
					want = store.WorkerRollback
				}
				equal(t, "Status", b.worker(t, w.ID).Status, want)
			})
		}
		t.Run("unknown or foreign worker", func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			j, w := b.workerIn(t, store.WorkerSuccess)
			isErr(t, b.s.WorkerRequestRollback(b.ctx, b.acct, j.ID, w.ID+1000, b.now), store.ErrNotFound, "WorkerRequestRollback(unknown)")
			isErr(t, b.s.WorkerRequestRollback(b.ctx, b.other, j.ID, w.ID, b.now), store.ErrNotFound, "WorkerRequestRollback(another account's)")
			equal(t, "Status", b.worker(t, w.ID).Status, store.WorkerSuccess)
		})
	})

	t.Run("Rollback", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, ws := b.simpleJob(t, 2)
		equal(t, "job outcome", b.run(t, j.ID, store.WorkerSuccess), store.JobSuccess)
		equal(t, "Rollback before", b.getJob(t, j.ID).Rollback, false)
		for _, w := range ws {
			ok(t, b.s.WorkerRequestRollback(b.ctx, b.acct, j.ID, w.ID, b.now), "WorkerRequestRollback(%d)", w.ID)
		}
		next, has, err := b.s.WorkerNextDue(b.ctx)
		ok(t, err, "WorkerNextDue")
		if !has || next.After(b.now) {
			t.Errorf("WorkerNextDue = %v, %v; want due by %v", next, has, b.now)
		}
		rolling := b.claim(t, "a", b.now, 10)
		equal(t, "claimed rollbacks", idsOf(rolling, workerID), idsOf(ws, workerID))
		for _, w := range rolling {
			equal(t, "claimed rollback Status", w.Status, store.WorkerRollback)
			equal(t, "claimed rollback LeaseOwner", w.LeaseOwner, "a")
		}
		ok(t, b.s.WorkerFinish(b.ctx, store.WorkerFinishParams{ID: rolling[0].ID, LeaseToken: rolling[0].LeaseToken,
			Status: store.WorkerRollbackSuccess, Attempts: 1, Now: b.now, MarkJobRollback: true}), "WorkerFinish(rollback_success)")
		ok(t, b.s.WorkerFinish(b.ctx, store.WorkerFinishParams{ID: rolling[1].ID, LeaseToken: rolling[1].LeaseToken,
			Status: store.WorkerRollbackError, LastError: "gone", Attempts: 1, Now: b.now}), "WorkerFinish(rollback_error)")
		equal(t, "Rollback after", b.getJob(t, j.ID).Rollback, true)
		equal(t, "rolled back Status", b.worker(t, rolling[0].ID).Status, store.WorkerRollbackSuccess)
		equal(t, "failed rollback Status", b.worker(t, rolling[1].ID).Status, store.WorkerRollbackError)
		equal(t, "claimable after rollbacks", len(b.claim(t, "a", b.now, 10)), 0)
	})

	t.Run("NextDue", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		due := func(what string, want time.Time) {
			t.Helper()
			got, has, err := b.s.WorkerNextDue(b.ctx)
			ok(t, err, "WorkerNextDue (%s)", what)
			if want.IsZero() {
				if has {
					t.Errorf("WorkerNextDue (%s) = %v, want none", what, got)
				}
				return
			}
			if !has {
				t.Fatalf("WorkerNextDue (%s): none, want %v", what, want)
			}
			sameMS(t, "WorkerNextDue ("+what+")", got, want)
		}
		due("empty", time.Time{})
		j, ws := b.simpleJob(t, 1)
		b.schedule(t, j.ID, b.now)
		due("job pending", time.Time{})
		ids, err := b.s.JobStartDue(b.ctx, b.now)
		ok(t, err, "JobStartDue")
		equal(t, "started", ids, []int64{j.ID})
		due("job started", b.now)
		w := b.claimOne(t, "a", b.now, ws[0].ID)
		due("leased", b.now.Add(time.Minute))
		ok(t, b.s.WorkerFinish(b.ctx, store.WorkerFinishParams{ID: w.ID, LeaseToken: w.LeaseToken, Status: store.WorkerProcessing,
			Attempts: 1, NextRunAt: b.now.Add(5 * time.Minute), Now: b.now}), "WorkerFinish(retry)")
		due("retry", b.now.Add(5*time.Minute))
		w = b.claimOne(t, "a", b.now.Add(5*time.Minute), ws[0].ID)
		b.finish(t, w, store.WorkerSuccess)
		due("all done", time.Time{})
	})

	t.Run("ReleaseOwner", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, ws := b.simpleJob(t, 2)
		b.start(t, j.ID)
		hour := b.now.Add(time.Hour)
		claimAs := func(owner string) store.Worker {
			t.Helper()
			got, err := b.s.WorkerClaimDue(b.ctx, store.WorkerClaimDueParams{Owner: owner, Now: b.now, LeaseUntil: hour, Limit: 1})
			ok(t, err, "WorkerClaimDue(%s)", owner)
			if len(got) != 1 {
				t.Fatalf("WorkerClaimDue(%s) = %d workers, want 1", owner, len(got))
			}
			return got[0]
		}
		a, other := claimAs("a"), claimAs("b")
		equal(t, "claim while leased", len(b.claim(t, "c", b.now, 10)), 0)

		ok(t, b.s.WorkerReleaseOwner(b.ctx, "a"), "WorkerReleaseOwner(a)")
		got := b.claim(t, "c", b.now, 10)
		if len(got) != 1 || got[0].ID != a.ID {
			t.Fatalf("claim after release = %v, want only a's worker %d", idsOf(got, workerID), a.ID)
		}
		equal(t, "new LeaseOwner", got[0].LeaseOwner, "c")
		if got[0].LeaseToken <= a.LeaseToken {
			t.Errorf("new LeaseToken %d, want above %d", got[0].LeaseToken, a.LeaseToken)
		}
		isErr(t, b.s.WorkerFinish(b.ctx, store.WorkerFinishParams{ID: a.ID, LeaseToken: a.LeaseToken, Status: store.WorkerSuccess,
			Attempts: 1, Now: b.now}), store.ErrConflict, "WorkerFinish(released token)")
		b.finish(t, other, store.WorkerSuccess) // b's lease was untouched
		b.finish(t, got[0], store.WorkerSuccess)
		equal(t, "ids", sorted(a.ID, other.ID), idsOf(ws, workerID))
		ok(t, b.s.WorkerReleaseOwner(b.ctx, "nobody"), "WorkerReleaseOwner(nobody)")
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			desc   string
			status store.WorkerStatus
			want   error
		}{
			{desc: "editing job", status: store.WorkerEditing},
			{desc: "pending job", status: store.WorkerPending, want: store.ErrConflict},
			{desc: "processing job", status: store.WorkerScheduling, want: store.ErrConflict},
			{desc: "claimed worker", status: store.WorkerProcessing, want: store.ErrConflict},
			{desc: "finished worker", status: store.WorkerSuccess, want: store.ErrConflict},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				j, w := b.workerIn(t, tc.status)
				isErr(t, b.s.WorkerDelete(b.ctx, b.acct, j.ID, w.ID), tc.want, "WorkerDelete")
				_, err := b.s.WorkerGet(b.ctx, b.acct, w.ID)
				if tc.want == nil {
					isErr(t, err, store.ErrNotFound, "WorkerGet after delete")
					isErr(t, b.s.WorkerDelete(b.ctx, b.acct, j.ID, w.ID), store.ErrNotFound, "WorkerDelete again")
				} else {
					ok(t, err, "WorkerGet after a refused delete")
				}
			})
		}
		t.Run("unknown or foreign worker", func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			j, ws := b.simpleJob(t, 2)
			j2, _ := b.simpleJob(t, 1)
			isErr(t, b.s.WorkerDelete(b.ctx, b.acct, j.ID, ws[0].ID+1000), store.ErrNotFound, "WorkerDelete(unknown)")
			isErr(t, b.s.WorkerDelete(b.ctx, b.other, j.ID, ws[0].ID), store.ErrNotFound, "WorkerDelete(another account's)")
			isErr(t, b.s.WorkerDelete(b.ctx, b.acct, j2.ID, ws[0].ID), store.ErrNotFound, "WorkerDelete(through another job)")
			equal(t, "workers left", len(b.workers(t, b.acct, j.ID)), 2)
		})
	})

	t.Run("PageAndListAfter", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := b.cert(t, b.acct, "c", nil)
		var rs []store.Resource
		for i, product := range []string{"cdn", "slb", "cdn", "cdn", "slb", "cdn", "cdn"} {
			rs = append(rs, b.resource(t, b.acct, string(rune('a'+i)), func(r *store.Resource) { r.CloudProduct = product }))
		}
		j, ws := b.job(t, b.acct, c.ID, rs...)
		b.job(t, b.acct, c.ID, rs[0]) // another job's worker never shows up
		// WorkerPage answers exactly what WorkerList does, whether it can
		// seek (consecutive IDs) or not (a worker deleted in the middle).
		same := func(t *testing.T, when string) {
			t.Helper()
			for _, f := range []store.WorkerListParams{{}, {CloudProduct: "cdn"}, {CloudProduct: "slb"}, {Status: store.WorkerEditing}, {Status: store.WorkerSuccess}} {
				for off := 0; off <= 8; off++ {
					p := f
					p.AccountID, p.JobID, p.Offset, p.Limit = b.acct, j.ID, off, 3
					want, wantTotal, err := b.s.WorkerList(b.ctx, p)
					ok(t, err, "WorkerList")
					got, total, err := b.s.WorkerPage(b.ctx, p)
					ok(t, err, "WorkerPage")
					if total != wantTotal || !slices.Equal(idsOf(got, workerID), idsOf(want, workerID)) {
						t.Errorf("%s: WorkerPage(%+v) = %v (total %d), WorkerList = %v (total %d)", when, p,
							idsOf(got, workerID), total, idsOf(want, workerID), wantTotal)
					}
					if len(got) > 0 {
						equal(t, "first worker", got[0], want[0])
					}
				}
			}
			got, total, err := b.s.WorkerPage(b.ctx, store.WorkerListParams{AccountID: b.other, JobID: j.ID, Limit: 3})
			ok(t, err, "WorkerPage(another account)")
			if len(got) != 0 || total != 0 {
				t.Errorf("%s: WorkerPage(another account) = %d workers (total %d), want none", when, len(got), total)
			}
		}
		same(t, "consecutive IDs")
		walk := func(p store.WorkerListAfterParams) []int64 {
			var ids []int64
			for {
				page, err := b.s.WorkerListAfter(b.ctx, p)
				ok(t, err, "WorkerListAfter(after %d)", p.AfterID)
				if len(page) == 0 {
					return ids
				}
				ids = append(ids, idsOf(page, workerID)...)
				p.AfterID = page[len(page)-1].ID
			}
		}
		equal(t, "WorkerListAfter, the whole job in pages of 2", walk(store.WorkerListAfterParams{AccountID: b.acct, JobID: j.ID, Limit: 2}),
			idsOf(ws, workerID))
		equal(t, "WorkerListAfter, slb", walk(store.WorkerListAfterParams{AccountID: b.acct, JobID: j.ID, CloudProduct: "slb", Limit: 2}),
			[]int64{ws[1].ID, ws[4].ID})
		equal(t, "WorkerListAfter, another account", walk(store.WorkerListAfterParams{AccountID: b.other, JobID: j.ID, Limit: 2}), []int64(nil))

		ok(t, b.s.WorkerDelete(b.ctx, b.acct, j.ID, ws[3].ID), "WorkerDelete")
		same(t, "a worker deleted")
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := b.cert(t, b.acct, "c", nil)
		var rs []store.Resource
		for i, product := range []string{"cdn", "cdn", "cdn", "slb", "slb"} {
			rs = append(rs, b.resource(t, b.acct, string(rune('a'+i)), func(r *store.Resource) { r.CloudProduct = product }))
		}
		j, ws := b.job(t, b.acct, c.ID, rs...)
		b.job(t, b.acct, c.ID, rs[0]) // another job's worker never shows up
		b.start(t, j.ID)
		// ws[0] (cdn) and ws[3] (slb) succeed.
		for _, w := range b.claim(t, "a", b.now, 10) {
			if w.ID == ws[0].ID || w.ID == ws[3].ID {
				b.finish(t, w, store.WorkerSuccess)
			}
		}
		all := idsOf(ws, workerID)
		cases := []struct {
			desc      string
			p         store.WorkerListParams
			wantRows  int
			want      []int64 // checked when set
			wantTotal int64
		}{
			{desc: "all", wantRows: 5, want: all, wantTotal: 5},
			{desc: "status", p: store.WorkerListParams{Status: store.WorkerSuccess}, wantRows: 2, want: sorted(ws[0].ID, ws[3].ID), wantTotal: 2},
			{desc: "product", p: store.WorkerListParams{CloudProduct: "slb"}, wantRows: 2, want: sorted(ws[3].ID, ws[4].ID), wantTotal: 2},
			{desc: "status and product", p: store.WorkerListParams{Status: store.WorkerProcessing, CloudProduct: "cdn"}, wantRows: 2,
				want: sorted(ws[1].ID, ws[2].ID), wantTotal: 2},
			{desc: "first page", p: store.WorkerListParams{Limit: 2}, wantRows: 2, wantTotal: 5},
			{desc: "last page", p: store.WorkerListParams{Limit: 2, Offset: 4}, wantRows: 1, wantTotal: 5},
			{desc: "past the end", p: store.WorkerListParams{Limit: 2, Offset: 6}, wantRows: 0, want: []int64{}, wantTotal: 5},
			{desc: "filtered page", p: store.WorkerListParams{CloudProduct: "cdn", Limit: 2, Offset: 2}, wantRows: 1, wantTotal: 3},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				p := tc.p
				p.AccountID, p.JobID = b.acct, j.ID
				list, total, err := b.s.WorkerList(b.ctx, p)
				ok(t, err, "WorkerList")
				equal(t, "rows", len(list), tc.wantRows)
				equal(t, "total", total, tc.wantTotal)
				if tc.want != nil {
					equal(t, "IDs", idsOf(list, workerID), tc.want)
				}
			})
		}
		t.Run("pages together", func(t *testing.T) {
			var seen []int64
			for off := 0; off < 5; off += 2 {
				list, _, err := b.s.WorkerList(b.ctx, store.WorkerListParams{AccountID: b.acct, JobID: j.ID, Limit: 2, Offset: off})
				ok(t, err, "WorkerList(offset %d)", off)
				seen = append(seen, idsOf(list, workerID)...)
			}
			equal(t, "pages together", sorted(seen...), all)
		})
		t.Run("another account", func(t *testing.T) {
			list, total, err := b.s.WorkerList(b.ctx, store.WorkerListParams{AccountID: b.other, JobID: j.ID, Limit: 10})
			ok(t, err, "WorkerList")
			equal(t, "rows", len(list), 0)
			equal(t, "total", total, int64(0))
		})
	})
}
